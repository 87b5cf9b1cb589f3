/* A fork server that is killed, or stopped (SIGSTOP) for DV_FS_STOPPED_S,
 * reports no more ends: its client takes it as gone, so that a join ends
 * (its process reads as killed: it was, by PR_SET_PDEATHSIG) and a start
 * fails with a clear error instead of waiting for ever. Each case runs in
 * a child of its own, a private job with its own fork server. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "drover/drover.h"

DV_TASK(t_sleep)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg, (void)len, (void)res;
    sleep(60);
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* The state letter and parent of pid from /proc; 0 when it is gone. */
static char state_of(pid_t pid, pid_t *parent)
{
    char path[64], buf[512], st = 0;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    long ppid = -1;
    if (!p || sscanf(p + 2, "%c %ld", &st, &ppid) != 2)
        return '?';
    if (parent)
        *parent = (pid_t)ppid;
    return st;
}

/* Whether pid has ended (gone, or a zombie) within 5 s. */
static int ends(pid_t pid)
{
    for (int i = 0; i < 500; i++) {
        char st = state_of(pid, NULL);
        if (!st || st == 'Z' || st == 'X')
            return 1;
        usleep(10000);
    }
    return 0;
}

static void check_start_fails(double within_s)
{
    dv_error_t err;
    double t0 = now_s();
    dv_process_t *q = dv_process_start("t_sleep", NULL, 0, NULL, &err);
    CHECK(q == NULL);
    CHECK_EQ_INT(errno, ENOTCONN);
    CHECK(strstr(err.text, "fork server is gone") != NULL);
    CHECK(now_s() - t0 < within_s);
    if (q)
        dv_process_destroy(&q);
}

/* mode: "kill" (SIGKILL, then a join), "stop" (SIGSTOP, then a join),
 * "stop-start" (SIGSTOP, then a start). */
static void run_case(const char *mode)
{
    dv_error_t err;
    dv_process_t *p = dv_process_start("t_sleep", NULL, 0, NULL, &err);
    CHECK(p != NULL);
    if (!p)
        return;
    pid_t task = dv_process_pid(p), server = -1;
    state_of(task, &server);
    CHECK(server > 1 && server != getpid());
    if (server <= 1 || server == getpid())
        return;
    double t0 = now_s();
    kill(server, strcmp(mode, "kill") == 0 ? SIGKILL : SIGSTOP);
    if (strcmp(mode, "stop-start") == 0) {
        check_start_fails(15);
        CHECK(now_s() - t0 >= 4); /* a stop shorter than 5 s is waited for */
        t0 = now_s();             /* the server is gone: a join ends now */
    }
    CHECK_EQ_INT(dv_process_join(p, -1, &err), 0);
    double took = now_s() - t0;
    int code = 0;
    CHECK_EQ_INT(dv_process_exitcode(p, &code), 0);
    CHECK_EQ_INT(code, -SIGKILL);
    CHECK(!dv_process_is_alive(p));
    if (strcmp(mode, "stop") == 0)
        CHECK(took >= 4 && took < 15);
    else
        CHECK(took < 3);
    CHECK(ends(task));
    CHECK(ends(server));
    check_start_fails(3);
    dv_process_destroy(&p);
}

int main(int argc, char **argv)
{
    static const char *const modes[] = {"kill", "stop", "stop-start"};
    int failed = 0;
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        fflush(NULL);
        pid_t c = fork();
        if (c == 0) {
            dv_error_t err;
            if (dv_init(&argc, &argv, &err) < 0) {
                fprintf(stderr, "dv_init: %s\n", err.text);
                _exit(1);
            }
            run_case(modes[m]);
            dv_finalize();
            _exit(check_failures ? 1 : 0);
        }
        int st = 0;
        int ok = c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) &&
                 WEXITSTATUS(st) == 0;
        fprintf(stderr, "%s: %s\n", modes[m], ok ? "ok" : "FAILED");
        failed += !ok;
    }
    return failed ? 1 : 0;
}
