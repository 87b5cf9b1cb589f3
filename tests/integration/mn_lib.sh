# shellcheck shell=bash
# Helpers shared by the multi-node integration scripts (sourced after the
# node harness, netns.sh or slurm.sh): the programs, failure reporting, and
# the wait for a job's processes to be gone.
B=${DROVER_BUILD:?DROVER_BUILD must name the build tree}
D=$B/bin/drover
J=$B/bin/dv_mn_job
fail=0
bad() {
    echo "FAIL: $*"
    fail=1
}

# job_left REGEX: succeeds while a process (not this shell) whose
# DROVER_JOB_ID matches REGEX runs.
job_left() {
    grep -lzE "DROVER_JOB_ID=$1\$" /proc/[0-9]*/environ 2>/dev/null |
        grep -v "^/proc/$$/" | grep -q .
}

# job_gone REGEX: wait up to 5 s (a teardown under the sanitizers is slow)
# for the processes of the job to go; fails if some are still there.
job_gone() {
    for _ in $(seq 50); do
        job_left "$1" || return 0
        sleep 0.1
    done
    ! job_left "$1"
}
