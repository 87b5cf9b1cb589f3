/* dv_process_join returns only once the process has exited and was
 * reaped, as multiprocessing's join does: what a process holds (locks,
 * sockets, GPU memory) is released only at its exit. A task held in its
 * exit by ptrace (PTRACE_O_TRACEEXIT: stopped after its function returned,
 * before the kernel tears it down) must not be reported as ended. Exits 77
 * (skipped) when this process may not trace its tasks. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "drover/drover.h"

DV_TASK(t_quick)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg, (void)len, (void)res;
    return 0;
}

/* Waits for the event whose handle is the argument, then returns 3. */
DV_TASK(t_held)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    dv_handle_t h;
    if (len != sizeof(h))
        return 1;
    memcpy(&h, arg, sizeof(h));
    dv_event_t *go = dv_event_attach(&h, NULL);
    if (!go || dv_event_wait(go, 30, NULL) < 0)
        return 2;
    dv_event_destroy(&go);
    return 3;
}

static int gone(pid_t pid)
{
    return kill(pid, 0) < 0 && errno == ESRCH;
}

/* After each join the pid no longer exists (not even as a zombie). */
static void test_gone_after_join(void)
{
    dv_error_t err;
    int alive = 0;
    for (int i = 0; i < 50; i++) {
        dv_process_t *p = dv_process_start("t_quick", NULL, 0, NULL, &err);
        CHECK(p != NULL);
        if (!p)
            return;
        pid_t pid = dv_process_pid(p);
        CHECK_EQ_INT(dv_process_join(p, 30, &err), 0);
        CHECK(!dv_process_is_alive(p));
        alive += !gone(pid);
        dv_process_destroy(&p);
    }
    if (alive)
        fprintf(stderr, "%d of 50 pids still there after join\n", alive);
    CHECK_EQ_INT(alive, 0);
}

/* Waits for pid's exit stop, passing on any signal it stops for. */
static int wait_exit_stop(pid_t pid)
{
    for (;;) {
        int st;
        if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st))
            return -1;
        if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8)))
            return 0;
        int sig = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
        if (ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig) < 0)
            return -1;
    }
}

/* Returns 77 when tracing is not allowed here. */
static int test_held_in_exit(void)
{
    dv_error_t err;
    dv_event_t *go = dv_event_create(&err);
    CHECK(go != NULL);
    dv_handle_t h;
    CHECK_EQ_INT(dv_event_handle(go, &h), 0);
    dv_process_t *p = dv_process_start("t_held", &h, sizeof(h), NULL, &err);
    CHECK(p != NULL);
    if (!go || !p)
        return 1;
    pid_t pid = dv_process_pid(p);
    int traced =
        ptrace(PTRACE_SEIZE, pid, NULL, (void *)(long)PTRACE_O_TRACEEXIT) == 0;
    if (!traced)
        fprintf(stderr, "skipped: cannot trace a task: %s\n", strerror(errno));
    dv_event_set(go);
    if (traced) {
        CHECK_EQ_INT(wait_exit_stop(pid), 0);
        /* Its function returned; its exit is held. */
        CHECK_EQ_INT(dv_process_join(p, 0.5, &err), -1);
        CHECK_EQ_INT(errno, ETIMEDOUT);
        CHECK(dv_process_is_alive(p));
        int code = 0;
        CHECK_EQ_INT(dv_process_exitcode(p, &code), -1);
        CHECK_EQ_INT(ptrace(PTRACE_DETACH, pid, NULL, NULL), 0);
    }
    CHECK_EQ_INT(dv_process_join(p, 30, &err), 0);
    CHECK(gone(pid));
    int code = -1;
    CHECK_EQ_INT(dv_process_exitcode(p, &code), 0);
    CHECK_EQ_INT(code, 3);
    dv_process_destroy(&p);
    dv_event_destroy(&go);
    return traced ? 0 : 77;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "dv_init: %s\n", err.text);
        return 1;
    }
    test_gone_after_join();
    int skip = test_held_in_exit();
    dv_finalize();
    if (check_failures)
        return CHECK_DONE();
    return skip == 77 ? 77 : CHECK_DONE();
}
