/* The fork server's child forked ahead (the spare) and the task prelude:
 * the prelude runs once in every task before it, whether the task ran in
 * the spare or in a new fork (an argument too large for the spare); a
 * spare killed from outside is replaced and costs no start; the spare is
 * gone with the job. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "drover/drover.h"

static pid_t prelude_pid; /* set by the prelude, in the task's process */
static int prelude_runs;

static void prelude(void)
{
    prelude_pid = getpid();
    prelude_runs++;
}

/* 0 when the prelude ran once in this process and the argument bytes are
 * the pattern of check_bytes(). */
DV_TASK(t_after_prelude)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    if (prelude_pid != getpid() || prelude_runs != 1)
        return 2;
    const unsigned char *b = arg;
    for (size_t i = 0; i < len; i++)
        if (b[i] != (unsigned char)(i * 7))
            return 3;
    return 0;
}

static int run(size_t len)
{
    unsigned char *arg = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        arg[i] = (unsigned char)(i * 7);
    dv_error_t err;
    dv_process_t *p = dv_process_start("t_after_prelude", arg, len, NULL, &err);
    free(arg);
    int code = -100;
    if (!p) {
        fprintf(stderr, "start: %s\n", err.text);
        return code;
    }
    if (dv_process_join(p, 30, &err) == 0)
        dv_process_exitcode(p, &code);
    dv_process_destroy(&p);
    return code;
}

static pid_t ppid_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *e = strrchr(buf, ')');
    int ppid;
    char state;
    if (!e || sscanf(e + 1, " %c %d", &state, &ppid) != 2 || state == 'Z')
        return -1;
    return ppid;
}

/* The spare: the one grandchild of this process (the fork server's child
 * while no task runs), or -1. */
static pid_t find_spare(void)
{
    DIR *d = opendir("/proc");
    pid_t found = -1;
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        pid_t pid = (pid_t)atoi(e->d_name);
        pid_t parent = pid > 0 ? ppid_of(pid) : -1;
        if (parent > 0 && ppid_of(parent) == getpid()) {
            found = pid;
            n++;
        }
    }
    if (d)
        closedir(d);
    return n == 1 ? found : -1;
}

/* Waits up to 5 s for pid to be gone (reaped, or a zombie). */
static int gone(pid_t pid)
{
    for (int i = 0; i < 500; i++) {
        if (ppid_of(pid) < 0)
            return 1;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    return 0;
}

static void test_prelude(void)
{
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(run(64), 0);
    CHECK_EQ_INT(run(0), 0);
    CHECK_EQ_INT(run(1u << 20), 0); /* past what the spare takes: a fork */
    CHECK_EQ_INT(run(64), 0);
}

static void test_spare_killed(pid_t *last)
{
    pid_t spare = find_spare();
    CHECK(spare > 0);
    if (spare <= 0)
        return;
    CHECK(kill(spare, SIGKILL) == 0);
    CHECK(gone(spare));
    CHECK_EQ_INT(run(64), 0);
    CHECK_EQ_INT(run(64), 0);
    *last = find_spare();
    CHECK(*last > 0 && *last != spare);
}

int main(int argc, char **argv)
{
    dv_task_set_prelude(prelude);
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "dv_init: %s\n", err.text);
        return 1;
    }
    CHECK_EQ_INT(prelude_runs, 0); /* not in the main process */
    test_prelude();
    pid_t spare = -1;
    test_spare_killed(&spare);
    dv_finalize();
    if (spare > 0)
        CHECK(gone(spare));
    return CHECK_DONE();
}
