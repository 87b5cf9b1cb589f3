/* A drover program for the integration scripts: starts tasks, prints their
 * pids, then ends the way it is told. Usage: dv_job_helper MODE [N [CODE]]
 *   sleep N      N tasks that sleep; print "ready"; sleep for ever
 *   stubborn N   the same, but the tasks ignore SIGTERM
 *   crash N      N sleeping tasks, then abort()
 *   exit N CODE  N sleeping tasks, then exit(CODE) without dv_finalize
 *   finalize N   N sleeping tasks, dv_finalize, exit 0 if they are gone
 *   echo         a task writes to stdout and stderr; exit with its code
 *   shm          make a shared-memory segment of the job, exit 0
 *   queues N     N queues holding a message each, 2 sleeping tasks and an
 *                orphan (a grandchild of main, reparented to the agent);
 *                print their pids, "ready"; sleep for ever */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drover/drover.h"

DV_TASK(nap)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    if (len == 1 && *(const char *)arg == 's')
        signal(SIGTERM, SIG_IGN);
    for (;;)
        pause();
    return 0;
}

DV_TASK(say)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    printf("task-out\n");
    fprintf(stderr, "task-err\n");
    return 9;
}

static pid_t pids[256];

static void start_naps(int n, int stubborn)
{
    if (n < 0 || n > 256)
        exit(2);
    printf("pids:");
    for (int i = 0; i < n; i++) {
        dv_error_t err;
        dv_process_t *p =
            dv_process_start("nap", stubborn ? "s" : "n", 1, NULL, &err);
        if (!p) {
            fprintf(stderr, "drover: job_helper: %s\n", err.text);
            exit(1);
        }
        pids[i] = dv_process_pid(p);
        printf(" %d", (int)pids[i]);
        dv_process_destroy(&p);
    }
    printf("\n");
    fflush(stdout);
}

static int all_gone(int n)
{
    for (int i = 0; i < n; i++)
        if (kill(pids[i], 0) == 0)
            return 0;
    return 1;
}

/* A process the runtime did not start: a grandchild whose parent is gone. */
static pid_t start_orphan(void)
{
    int p[2];
    pid_t o = -1;
    if (pipe(p) < 0)
        return -1;
    pid_t c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            close(p[0]);
            close(p[1]);
            for (;;)
                pause();
        }
        _exit(write(p[1], &g, sizeof(g)) == sizeof(g) ? 0 : 1);
    }
    close(p[1]);
    if (c < 0 || read(p[0], &o, sizeof(o)) != sizeof(o))
        o = -1;
    close(p[0]);
    if (c > 0)
        waitpid(c, NULL, 0);
    return o;
}

static int make_queues(int n)
{
    for (int i = 0; i < n; i++) {
        dv_error_t err;
        dv_queue_t *q = dv_queue_create(0, &err);
        if (!q || dv_queue_put(q, "x", 1, 5, &err) < 0) {
            fprintf(stderr, "drover: job_helper: %s\n", err.text);
            return -1;
        }
        /* Not destroyed: the queue lives until the job ends. */
    }
    start_naps(2, 0);
    pid_t o = start_orphan();
    printf("pids: %d\nready\n", (int)o);
    fflush(stdout);
    return o > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: job_helper: %s\n", err.text);
        return 1;
    }
    const char *mode = argc > 1 ? argv[1] : "";
    int n = argc > 2 ? atoi(argv[2]) : 0;
    if (!strcmp(mode, "sleep") || !strcmp(mode, "stubborn")) {
        start_naps(n, mode[1] == 't');
        printf("ready\n");
        fflush(stdout);
        for (;;)
            pause();
    } else if (!strcmp(mode, "crash")) {
        start_naps(n, 0);
        abort();
    } else if (!strcmp(mode, "exit")) {
        start_naps(n, 0);
        exit(argc > 3 ? atoi(argv[3]) : 0);
    } else if (!strcmp(mode, "finalize")) {
        start_naps(n, 0);
        dv_finalize();
        return all_gone(n) ? 0 : 1;
    } else if (!strcmp(mode, "echo")) {
        dv_process_t *p = dv_process_start("say", NULL, 0, NULL, &err);
        int code = -1;
        if (!p || dv_process_join(p, 30, &err) < 0 ||
            dv_process_exitcode(p, &code) < 0)
            return 1;
        dv_process_destroy(&p);
        dv_finalize();
        return code;
    } else if (!strcmp(mode, "queues")) {
        if (make_queues(n) < 0)
            return 1;
        for (;;)
            pause();
    } else if (!strcmp(mode, "shm")) {
        char name[200];
        snprintf(name, sizeof(name), "/drover.%s.helper",
                 getenv("DROVER_JOB_ID"));
        int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
        if (fd < 0)
            return 1;
        close(fd);
        printf("made %s\n", name);
        return 0;
    }
    fprintf(stderr, "drover: job_helper: unknown mode '%s'\n", mode);
    return 2;
}
