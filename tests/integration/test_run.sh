#!/usr/bin/env bash
# drover run: exit statuses, bad command lines, output forwarding, a
# program started without drover run, and nothing left behind.
set -u
. "$(dirname "$0")/rt_lib.sh"

expect 0 "true" "$D" run -- /bin/true
expect 3 "exit 3" "$D" run -- sh -c 'exit 3'
expect 137 "kill -9" "$D" run -- sh -c 'kill -9 $$'
expect 143 "kill -TERM" "$D" run -- sh -c 'kill -TERM $$'
expect 0 "no --" "$D" run /bin/true
expect 0 "options" "$D" run --grace 1 --job-id=opt1 -- /bin/true
expect 0 "help" "$D" run --help
expect 0 "top help" "$D" --help
expect 2 "no command" "$D"
expect 2 "unknown command" "$D" frobnicate
expect 2 "missing program" "$D" run
expect 2 "missing program after --" "$D" run --
expect 2 "unknown option" "$D" run --frobnicate -- /bin/true
expect 2 "bad grace" "$D" run --grace abc -- /bin/true
expect 2 "negative grace" "$D" run --grace -1 -- /bin/true
expect 2 "grace without value" "$D" run --grace
expect 2 "bad job id" "$D" run --job-id 'a/b' -- /bin/true
expect 127 "no such program" "$D" run -- /nonexistent/program
expect 126 "not executable" "$D" run -- /dev/null

for args in "run --frobnicate -- x" "run" "frobnicate" "run -- /nonexistent"; do
    # shellcheck disable=SC2086
    out=$("$D" $args 2>&1 >/dev/null)
    [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ $out == "drover: "* ]] ||
        bad "drover $args: stderr is not one 'drover: ' line: $out"
done

# The output of every process of the job reaches drover run's.
out=$("$D" run --job-id echo1 -- "$H" echo 2>/dev/null)
rc=$?
[ "$rc" -eq 9 ] || bad "echo: exit $rc, want 9"
grep -qx task-out <<<"$out" || bad "echo: no task stdout: $out"
err=$("$D" run -- "$H" echo 2>&1 >/dev/null)
grep -qx task-err <<<"$err" || bad "echo: no task stderr: $err"
no_leftovers echo1

# Main processes that end by themselves, with their tasks still running.
out=$("$D" run --job-id exit1 -- "$H" exit 3 7)
rc=$?
[ "$rc" -eq 7 ] || bad "exit with tasks: exit $rc, want 7"
# shellcheck disable=SC2046
no_leftovers exit1 $(sed -n 's/^pids://p' <<<"$out")
out=$("$D" run --job-id crash1 -- "$H" crash 3 2>/dev/null)
rc=$?
[ "$rc" -eq 134 ] || bad "crash: exit $rc, want 134"
# shellcheck disable=SC2046
no_leftovers crash1 $(sed -n 's/^pids://p' <<<"$out")
expect 0 "finalize stops tasks" "$D" run -- "$H" finalize 3
expect 0 "shm" "$D" run --job-id shm1 -- "$H" shm
no_leftovers shm1
expect 2 "helper bad mode" "$D" run -- "$H" nonsense

# A one-node job's node table counts the node's GPUs as a multi-node one
# does (the NVML test double: 2; no library: 0).
table=$(DROVER_NVML_LIBRARY=$DROVER_BUILD/lib/libdv_fake_nvml.so DV_FAKE_NVML=two \
    DROVER_RSMI_LIBRARY=/nonexistent.so "$D" run -- "$DROVER_BUILD/bin/dv_mn_job" table)
grep -qE "^node 0 .* gpus 2$" <<<"$table" || bad "gpus: $table"
table=$(DROVER_NVML_LIBRARY=/nonexistent.so DROVER_RSMI_LIBRARY=/nonexistent.so \
    "$D" run -- "$DROVER_BUILD/bin/dv_mn_job" table)
grep -qE "^node 0 .* gpus 0$" <<<"$table" || bad "no gpus: $table"

# Without drover run: a private one-node runtime, same statuses.
out=$(DROVER_JOB_ID=solo1 "$H" exit 2 5)
rc=$?
[ "$rc" -eq 5 ] || bad "solo exit: $rc, want 5"
# shellcheck disable=SC2046
no_leftovers solo1 $(sed -n 's/^pids://p' <<<"$out")
out=$(DROVER_JOB_ID=solo2 "$H" crash 2 2>/dev/null)
rc=$?
[ "$rc" -eq 134 ] || bad "solo crash: $rc, want 134"
# shellcheck disable=SC2046
no_leftovers solo2 $(sed -n 's/^pids://p' <<<"$out")
expect 0 "solo finalize" env DROVER_JOB_ID=solo3 "$H" finalize 2
expect 0 "solo shm" env DROVER_JOB_ID=solo4 "$H" shm
no_leftovers solo4
out=$(DROVER_JOB_ID=solo5 "$H" echo 2>&1)
grep -qx task-out <<<"$out" && grep -qx task-err <<<"$out" ||
    bad "solo echo: $out"
finish
