/* Helpers shared by the queue and event tests: a private job id (so the
 * test can find its own shared-memory segments), a check that none is
 * left, and small fork/wait helpers. */
#ifndef DROVER_TESTS_QUEUE_UTIL_H
#define DROVER_TESTS_QUEUE_UTIL_H

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tq_prefix[64];

/* Call first in main(), before any drover call. */
static inline void tq_setup(const char *name)
{
    char id[48];
    snprintf(id, sizeof(id), "t%s%ld", name, (long)getpid());
    setenv("DROVER_JOB_ID", id, 1);
    snprintf(tq_prefix, sizeof(tq_prefix), "drover.%s.", id);
}

/* Segments of this test's job now in /dev/shm. */
static inline int tq_leftovers(void)
{
    int n = 0;
    DIR *d = opendir("/dev/shm");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, tq_prefix, strlen(tq_prefix)) == 0) {
            fprintf(stderr, "left over: /dev/shm/%s\n", e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static inline double tq_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void tq_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Exit status of a child: its code, or 128 + signal. */
static inline int tq_wait(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif
