/* The node's host (src/multinode/mn_host.h) seen from a job on 2 nodes:
 * processes placed on node 1 that come from its host's fork server (their
 * parent runs this program, not the agent). Usage: dv_mn_host [MODE],
 * under `drover run` with DV_TEST_ORIGIN=yes in its environment. Prints:
 *   "hosted after K (W)"  K starts that were execs before the first that
 *                         came from the host (W 1; K 0: the first waits
 *                         for the host to come up)
 *   "hosted N of 20"      of 20 starts after it
 *   "code C"              a hosted process's exit code (7 expected)
 *   "kill K term T"       hosted sleepers killed / terminated: -9, -15
 *   "gpu G"               CUDA_VISIBLE_DEVICES a process placed on GPU 1
 *                         saw ("1")
 *   "churn N of 400"      of 400 short processes, CHURN_WINDOW at a time
 *                         (their ends come while starts do), those that
 *                         ended with their code (all: the host stays)
 *   "host gone A B"       the codes of two hosted processes, one of which
 *                         killed the host, both gone with its fork server
 *   "after host W"        how the next start was made: 2 (an exec)
 * With MODE "stop-join" or "stop-start", once the host is up, a hosted
 * process stops it (SIGSTOP) and exits instead, and the program prints:
 *   "stopped host A W"    that process's code (-9: its end, never reported
 *                         by the host, is seen and the host taken as gone)
 *                         and how the next start was made (2: an exec),
 *                         after a join of that process ("stop-join") or
 *                         while the host is stopped ("stop-start"), both
 *                         before node 1 would be taken as lost */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/drover.h"

static int die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: mn_host: %s: %s\n", what, err->text);
    exit(1);
}

/* The program file of process pid ("self" when 0). */
static int exe_of(pid_t pid, char *out, size_t cap)
{
    char path[64];
    if (pid)
        snprintf(path, sizeof(path), "/proc/%ld/exe", (long)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/exe");
    ssize_t n = readlink(path, out, cap - 1);
    if (n < 0)
        return -1;
    out[n] = 0;
    return 0;
}

/* The parent of pid, from /proc, or -1. */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    char st;
    long pp;
    return rp && sscanf(rp + 1, " %c %ld", &st, &pp) == 2 ? (pid_t)pp : -1;
}

/* 1: a fork of this program (the host's fork server), 2: started by
 * another program (the agent), 3: without the origin's environment or
 * working directory (DV_TEST_CWD). */
DV_TASK(where_from)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    char self[PATH_MAX], parent[PATH_MAX], cwd[PATH_MAX];
    const char *o = getenv("DV_TEST_ORIGIN"), *want = getenv("DV_TEST_CWD");
    if (!o || strcmp(o, "yes") || !want || !getcwd(cwd, sizeof(cwd)) ||
        strcmp(cwd, want))
        return 3;
    if (exe_of(0, self, sizeof(self)) < 0 ||
        exe_of(getppid(), parent, sizeof(parent)) < 0)
        return 4;
    return strcmp(self, parent) ? 2 : 1;
}

DV_TASK(code_of)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    return len == sizeof(int) ? *(const int *)arg : 100;
}

DV_TASK(sleeper)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    for (;;)
        pause();
    return 0;
}

DV_TASK(gpu_seen)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    const char *g = getenv("CUDA_VISIBLE_DEVICES");
    return g ? atoi(g) : 99;
}

/* Kill the host: the parent of this process's parent (the fork server). */
DV_TASK(host_killer)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    pid_t host = parent_of(getppid());
    if (host > 1)
        kill(host, SIGKILL);
    for (;;)
        pause();
    return 0;
}

/* Stop the host's fork server (this process's parent), as a hung one. */
DV_TASK(host_stopper)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    kill(getppid(), SIGSTOP);
    return 0;
}

static dv_placement_t on_node1(int gpu)
{
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = 1;
    w.gpu = gpu;
    return w;
}

static dv_process_t *start(const char *task, const void *arg, size_t len,
                           int gpu)
{
    dv_error_t err;
    dv_placement_t w = on_node1(gpu);
    dv_process_t *p = dv_process_start(task, arg, len, &w, &err);
    if (!p)
        die(task, &err);
    return p;
}

static int finish(dv_process_t *p)
{
    dv_error_t err;
    int code = 1000;
    if (dv_process_join(p, 30, &err) < 0)
        die("join", &err);
    dv_process_exitcode(p, &code);
    dv_process_destroy(&p);
    return code;
}

static int run(const char *task, const void *arg, size_t len, int gpu)
{
    return finish(start(task, arg, len, gpu));
}

/* Starts while ends come: the host's answer to a start is read after
 * the ends it sent before it, so the end that made its connection
 * readable may be taken before the service looks at it. How many of
 * 400 ended with their own code. */
#define CHURN_WINDOW 8
static int churn(void)
{
    dv_process_t *p[CHURN_WINDOW] = {0};
    int ok = 0;
    for (int i = 0; i < 400 + CHURN_WINDOW; i++) {
        dv_process_t **q = &p[i % CHURN_WINDOW];
        if (*q)
            ok += finish(*q) == 7;
        int seven = 7;
        *q = i < 400 ? start("code_of", &seven, sizeof(seven), -1) : NULL;
    }
    return ok;
}

/* The stopper's code (-9: it went with the host, which never reported
 * its end) and how the next start was made; with `start`, that start
 * comes while the host is stopped and finds it so. */
static void stop_host(int start_while_stopped)
{
    dv_process_t *s = start("host_stopper", NULL, 0, -1);
    int code = 0;
    if (!start_while_stopped)
        code = finish(s);
    else
        sleep(1); /* the stopper has stopped the host */
    int w = run("where_from", NULL, 0, -1);
    if (start_while_stopped)
        code = finish(s);
    printf("stopped host %d %d\n", code, w);
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("dv_init", &err);
    if (dv_node_count() != 2) {
        fprintf(stderr, "drover: mn_host: wants 2 nodes\n");
        return 2;
    }
    int k = 0, w = 0;
    while (k < 500 && (w = run("where_from", NULL, 0, -1)) == 2) {
        k++;
        usleep(20000);
    }
    printf("hosted after %d (%d)\n", k, w);
    if (argc > 1 && strncmp(argv[1], "stop", 4) == 0) {
        stop_host(strcmp(argv[1], "stop-start") == 0);
        fflush(stdout);
        dv_finalize();
        return 0;
    }
    int n = 0;
    for (int i = 0; i < 20; i++)
        n += run("where_from", NULL, 0, -1) == 1;
    printf("hosted %d of 20\n", n);
    int seven = 7;
    printf("code %d\n", run("code_of", &seven, sizeof(seven), -1));
    dv_process_t *a = start("sleeper", NULL, 0, -1);
    dv_process_t *b = start("sleeper", NULL, 0, -1);
    dv_process_kill(a);
    dv_process_terminate(b);
    int ka = finish(a);
    printf("kill %d term %d\n", ka, finish(b));
    printf("gpu %d\n", run("gpu_seen", NULL, 0, 1));
    printf("churn %d of 400\n", churn());
    a = start("sleeper", NULL, 0, -1);
    b = start("host_killer", NULL, 0, -1);
    int ca = finish(a);
    printf("host gone %d %d\n", ca, finish(b));
    printf("after host %d\n", run("where_from", NULL, 0, -1));
    fflush(stdout);
    dv_finalize();
    return 0;
}
