#!/usr/bin/env bash
# Command lines and host files of drover run and drover agent: every error
# is one "drover: " line and a non-zero exit; `drover agent --help` is
# help; a 100,000-line host file is checked at once (its duplicate check
# was quadratic: 17 s); the launch stops at the first launcher that fails
# instead of starting one per line first; node names the node table
# cannot hold (a space, a newline) are refused, whoever sets them. Site
# conventions: Open MPI's `slots=N` and MPICH's `host:N` give a node's
# CPUs; under Slurm (a stand-in srun that starts the agent here),
# SLURM_JOB_CPUS_PER_NODE's "N(xK)" forms do, CUDA_VISIBLE_DEVICES=
# NoDevFiles means no GPU, and --overlap is passed only to a Slurm that
# has it. Nodes are emulated on loopback (DROVER_NODE_NAME): no root
# needed.
set -u
. "$(dirname "$0")/rt_lib.sh"
W=$(mktemp -d)
trap 'rm -rf "$DROVER_TMPDIR" "$W"' EXIT

# err_line CODE TEXT CMD...: CMD exits with CODE and says one "drover: "
# line holding TEXT on stderr.
err_line() {
    local want=$1 text=$2 out rc
    shift 2
    out=$(timeout 60 "$@" 2>&1 >/dev/null </dev/null)
    rc=$?
    [ "$rc" = "$want" ] || bad "$*: exit $rc, want $want: $out"
    [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && [[ $out == "drover: "* ]] ||
        bad "$*: not one 'drover: ' line: $out"
    grep -qF -- "$text" <<<"$out" || bad "$*: no '$text' in: $out"
}

err_line 2 "--nodes: '1.5' is not a whole number" "$D" run --nodes 1.5 -- true
err_line 2 "--nodes: '0' is not a number in 1..65536" "$D" run --nodes 0 -- true
# Local jobs too: the prefix is checked before anything runs.
err_line 2 "--network-prefix: 'garbage' is not an IPv4 prefix" \
    "$D" run --network-prefix garbage -- true
err_line 2 "--network-prefix: '10.0.0.0/33'" "$D" run --network-prefix 10.0.0.0/33 -- true
err_line 2 "--network-prefix: '10.0.0.0/8x'" "$D" run --network-prefix 10.0.0.0/8x -- true
expect 0 "good prefix" "$D" run --network-prefix 10.0.0.0/8 -- true
err_line 2 "agent: unknown argument '--frobnicate'" "$D" agent --frobnicate
for h in --help -h; do
    out=$("$D" agent $h 2>&1)
    rc=$?
    [ "$rc" = 0 ] && grep -q "^usage: drover agent" <<<"$out" ||
        bad "agent $h: exit $rc: $out"
done

# Host files: bad lines named by number.
printf 'lo-a\nlo b\n' >"$W/space"
err_line 1 "line 2: one host a line" "$D" run --hostfile "$W/space" -- true
printf 'lo-a\nlo\001b\n' >"$W/ctl"
err_line 1 "line 2: character 0x01 in a host name" "$D" run --hostfile "$W/ctl" -- true

# 100,000 lines with a duplicate at the end: found, and at once (CTest's
# timeout and the 60 s above catch a quadratic check).
awk 'BEGIN { for (i = 0; i < 100000; i++) print "h" i; print "h5" }' >"$W/dup"
err_line 1 "line 100001: duplicate host 'h5' (line 6)" "$D" run --hostfile "$W/dup" -- true

# 100,000 hosts whose launcher fails (as ssh does for a host that is
# down): the first failure ends the launch, long before the last line.
{ echo lo-a; head -n 100000 "$W/dup"; } >"$W/big" # lo-a: this host, node 0
cat >"$W/unreachable.sh" <<EOS
#!/bin/bash
echo "\$1" >>"$W/launched"
echo "ssh: connect to host \$1 port 22: No route to host" >&2
exit 255
EOS
chmod +x "$W/unreachable.sh"
err_line 1 "launch failed: ssh: connect to host h" \
    env DROVER_NODE_NAME=lo-a "$D" run --hostfile "$W/big" --job-id hf1 \
    --network-prefix 127.0.0.0/8 --launch-cmd "$W/unreachable.sh {host} {cmd}" -- true
n=$(wc -l <"$W/launched")
[ "$n" -lt 10000 ] || bad "launch went on after a failure: $n launchers"
no_leftovers hf1

# Node names that would break the node table (one line a node, words):
# node 0's (DROVER_NODE_NAME) and an agent's (its hello) are refused.
printf 'lo-a\nlo-b\n' >"$W/two"
err_line 1 "this node: node name 'lo?a' is not one word" \
    env DROVER_NODE_NAME="lo a" "$D" run --hostfile "$W/two" \
    --network-prefix 127.0.0.0/8 --launch-cmd "env {cmd}" -- true
cat >"$W/badname.sh" <<'EOS'
#!/bin/bash
h=$1
shift
DROVER_NODE_NAME="$h
evil" exec "$@"
EOS
chmod +x "$W/badname.sh"
err_line 1 "lo-b: node name 'lo-b?evil' is not one word" \
    env DROVER_NODE_NAME=lo-a "$D" run --hostfile "$W/two" --job-id hf2 \
    --network-prefix 127.0.0.0/8 --launch-cmd "$W/badname.sh {host} {cmd}" -- true
no_leftovers hf2

# Open MPI / MPICH host files: the CPUs a line gives are the node's.
printf 'lo-a slots=3 max_slots=8\nlo-b:5\n' >"$W/slots"
out=$(env DROVER_NODE_NAME=lo-a timeout 60 "$D" run --hostfile "$W/slots" \
    --job-id hf3 --network-prefix 127.0.0.0/8 \
    --launch-cmd "env DROVER_NODE_NAME={host} {cmd}" -- "$B/bin/dv_mn_job" table 2>&1)
grep -qx "node 0 lo-a 127.0.0.1 cpus 3 gpus [0-9]*" <<<"$out" &&
    grep -qx "node 1 lo-b 127.0.0.1 cpus 5 gpus [0-9]*" <<<"$out" ||
    bad "slots: $out"
no_leftovers hf3
printf 'lo-a\nlo-b cores=4\n' >"$W/key"
err_line 1 "line 2: unknown key 'cores'" "$D" run --hostfile "$W/key" -- true
printf 'lo-a slots=many\nlo-b\n' >"$W/count"
err_line 1 "line 1: slots: 'many' is not a number" "$D" run --hostfile "$W/count" -- true

# Slurm: a stand-in srun that says its version, notes its options and
# starts the one agent here, as node lo-b.
mkdir "$W/bin"
cat >"$W/bin/srun" <<EOS
#!/bin/bash
[ "\$1" = --version ] && { echo "slurm \$FAKE_SLURM_VERSION"; exit 0; }
echo "\$*" >"$W/srun-args"
while [[ \$1 == -* ]]; do [ "\$1" = --exclude ] && shift; shift; done
SLURM_NODEID=0 DROVER_NODE_NAME=lo-b exec "\$@"
EOS
chmod +x "$W/bin/srun"
slurm_run() {
    env PATH="$W/bin:$PATH" SLURM_JOB_ID=7 SLURM_JOB_NUM_NODES=2 \
        DROVER_NODE_NAME=lo-a DROVER_NVML_LIBRARY=$B/lib/libdv_fake_nvml.so \
        DV_FAKE_NVML=two DROVER_RSMI_LIBRARY=/nonexistent.so timeout 60 \
        "$D" run --network-prefix 127.0.0.0/8 "$@"
}
out=$(FAKE_SLURM_VERSION=23.02.7 SLURM_JOB_CPUS_PER_NODE='6,2' \
    CUDA_VISIBLE_DEVICES=NoDevFiles slurm_run --job-id sl1 -- \
    "$B/bin/dv_mn_job" table 2>&1)
grep -qx "node 0 lo-a 127.0.0.1 cpus 6 gpus 0" <<<"$out" &&
    grep -qx "node 1 lo-b 127.0.0.1 cpus 2 gpus 0" <<<"$out" ||
    bad "slurm cpus, NoDevFiles: $out"
grep -q -- "--ntasks-per-node=1 .*--overlap" "$W/srun-args" ||
    bad "slurm 23.02: no --overlap: $(cat "$W/srun-args")"
no_leftovers sl1
out=$(FAKE_SLURM_VERSION=20.02.7 SLURM_JOB_CPUS_PER_NODE='4(x2)' \
    slurm_run --job-id sl2 -- "$B/bin/dv_mn_job" table 2>&1)
grep -qx "node 1 lo-b 127.0.0.1 cpus 4 gpus 2" <<<"$out" || bad "slurm 4(x2): $out"
grep -q -- "--overlap" "$W/srun-args" &&
    bad "slurm 20.02 given --overlap: $(cat "$W/srun-args")"
no_leftovers sl2
for v in "24(x1):1 node, the allocation has 2" "24(2),8:a repeat is not (xK)"; do
    err_line 1 "SLURM_JOB_CPUS_PER_NODE '${v%%:*}': ${v#*:}" \
        env SLURM_JOB_CPUS_PER_NODE="${v%%:*}" PATH="$W/bin:$PATH" \
        SLURM_JOB_ID=7 SLURM_JOB_NUM_NODES=2 "$D" run -- true
done
finish
