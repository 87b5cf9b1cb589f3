/* Warm spares (white-box, then through a job): a task's written pages are
 * learned as it ends, and a later spare holds them as its own before it
 * runs anything (so writing them costs no fault); a task that does not
 * learn leaves the table alone; a stale table (pages no longer mapped or
 * no longer writable) does no harm; a spare takes at most the cap; a
 * learner killed while writing is taken over by the next; in a
 * job the spare is warm once a task has ended, a plain fork is not.
 * Exits 77 where the kernel lacks MADV_POPULATE_READ (before 5.14). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "drover/drover.h"
#include "lib/runtime.h"

#define PAGES 64
#define BIG 8192 /* twice the pages a spare takes at most */

static size_t page;

/* The pages of [p, p + n pages) that this process holds alone. */
static long exclusive_pages(const char *p, size_t n)
{
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    long count = 0;
    for (size_t i = 0; fd >= 0 && i < n; i++) {
        uint64_t e = 0;
        off_t at = (off_t)((uintptr_t)(p + i * page) / page * sizeof(e));
        if (pread(fd, &e, sizeof(e), at) == (ssize_t)sizeof(e) && (e >> 63) &&
            ((e >> 56) & 1))
            count++;
    }
    if (fd >= 0)
        close(fd);
    return count;
}

static char *touched_buffer(size_t n)
{
    char *b = mmap(NULL, n * page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    memset(b, 1, n * page);
    return b;
}

/* Run fn(b) in a child; its exit code, or -1. */
static int in_child(int (*fn)(char *), char *b)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(b));
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static int write_even_and_learn(char *b)
{
    for (size_t i = 0; i < PAGES; i += 2)
        b[i * page]++;
    dv__warm_learn();
    return 0;
}

static int write_odd_and_learn(char *b)
{
    for (size_t i = 1; i < PAGES; i += 2)
        b[i * page]++;
    dv__warm_learn(); /* the second task to end: it does not learn */
    return 0;
}

/* 0 when the even pages are this spare's own and writing them faults no
 * more, the odd ones still shared. */
static int spare_holds_even(char *b)
{
    dv__warm_spare();
    int bad = 0;
    for (size_t i = 0; i < PAGES; i++)
        if (exclusive_pages(b + i * page, 1) != (i % 2 == 0))
            bad = 1;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    for (size_t i = 0; i < PAGES; i += 2)
        b[i * page]++;
    getrusage(RUSAGE_SELF, &r1);
    if (r1.ru_minflt - r0.ru_minflt > 2)
        bad |= 2;
    return bad;
}

/* The learned pages unmapped (first half) or read-only (second half). */
static int spare_on_stale_table(char *b)
{
    munmap(b, PAGES / 2 * page);
    mprotect(b + PAGES / 2 * page, PAGES / 2 * page, PROT_READ);
    dv__warm_spare();
    return exclusive_pages(b + PAGES / 2 * page, PAGES / 2) != 0;
}

static int write_big_and_learn(char *b)
{
    for (size_t i = 0; i < BIG; i++)
        b[i * page]++;
    for (int k = 0; k < 32; k++) /* until the 32nd task: it learns */
        dv__warm_learn();
    return 0;
}

static int spare_within_cap(char *b)
{
    dv__warm_spare();
    long n = exclusive_pages(b, BIG);
    return n < BIG / 4 || n > BIG / 2;
}

static int die_while_learning(char *b)
{
    (void)b;
    dv__warm_claim_and_leave();
    return 0;
}

static int write_all_and_learn(char *b)
{
    for (size_t i = 0; i < PAGES; i++)
        b[i * page]++;
    for (int k = 0; k < 32; k++) /* one of them is due */
        dv__warm_learn();
    return 0;
}

/* The number of pages of b this spare holds as its own. */
static int spare_holds(char *b)
{
    dv__warm_spare();
    return (int)exclusive_pages(b, PAGES);
}

static void test_table(void)
{
    dv__warm_init(); /* this process stands for the fork server */
    char *b = touched_buffer(PAGES);
    CHECK(b != NULL);
    if (!b)
        return;
    CHECK_EQ_INT(in_child(write_even_and_learn, b), 0);
    CHECK_EQ_INT(in_child(write_odd_and_learn, b), 0);
    CHECK_EQ_INT(in_child(spare_holds_even, b), 0);
    CHECK_EQ_INT(in_child(spare_on_stale_table, b), 0);
    munmap(b, PAGES * page);
    char *big = touched_buffer(BIG);
    CHECK(big != NULL);
    if (!big)
        return;
    CHECK_EQ_INT(in_child(write_big_and_learn, big), 0);
    CHECK_EQ_INT(in_child(spare_within_cap, big), 0);
    munmap(big, BIG * page);
    /* A learner killed while it wrote: spares are cold until the next
     * learner takes over. */
    b = touched_buffer(PAGES);
    CHECK(b != NULL);
    if (!b)
        return;
    CHECK_EQ_INT(in_child(die_while_learning, b), 0);
    CHECK_EQ_INT(in_child(spare_holds, b), 0);
    CHECK_EQ_INT(in_child(write_all_and_learn, b), 0);
    CHECK_EQ_INT(in_child(spare_holds, b), PAGES);
    munmap(b, PAGES * page);
}

/* Through a job: the fork server shares this buffer with its children. */
static char *shared_buf;

DV_TASK(t_warm_write)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg, (void)len, (void)res;
    for (size_t i = 0; i < PAGES; i++)
        shared_buf[i * page]++;
    return 0;
}

/* The buffer's pages this task held alone as it began. */
DV_TASK(t_warm_count)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg, (void)len, (void)res;
    return (int)exclusive_pages(shared_buf, PAGES);
}

static int run(const char *task, size_t len)
{
    void *arg = calloc(1, len + 1);
    dv_error_t err;
    dv_process_t *p = dv_process_start(task, arg, len, NULL, &err);
    free(arg);
    int code = -1;
    if (p && dv_process_join(p, 30, &err) == 0)
        dv_process_exitcode(p, &code);
    dv_process_destroy(&p);
    return code;
}

static void test_job(int *argc, char ***argv)
{
    shared_buf = touched_buffer(PAGES);
    dv_error_t err;
    if (!shared_buf || dv_init(argc, argv, &err) < 0) {
        CHECK(!"dv_init");
        return;
    }
    CHECK_EQ_INT(run("t_warm_write", 0), 0); /* the first task learns */
    run("t_warm_count", 0); /* its spare was forked before that */
    CHECK_EQ_INT(run("t_warm_count", 0), PAGES);
    CHECK_EQ_INT(run("t_warm_count", 1u << 20), 0); /* a fork: cold */
    dv_finalize();
}

int main(int argc, char **argv)
{
    page = (size_t)sysconf(_SC_PAGESIZE);
    void *probe =
        mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (madvise(probe, page, 22 /* MADV_POPULATE_READ */) < 0 &&
        errno == EINVAL) {
        printf("skipped: the kernel lacks MADV_POPULATE_READ\n");
        return 77;
    }
    munmap(probe, page);
    test_table();
    test_job(&argc, &argv);
    return CHECK_DONE();
}
