/* Shared memory blocks on one node: create, the mapping, reads and writes
 * and their bounds, handles across processes (stale, forged, of another
 * kind), reads never torn by writers in other processes or threads, and a
 * process killed holding the block's lock. Built with shared.c included,
 * to reach the lock. */
#include "lib/shared.c"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#include "check.h"
#include "drover/event.h"
#include "test_queue_util.h"

#define PIECE ((size_t)256 << 10)
#define ROUNDS 200

static void test_basics(void)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_create(100, &err);
    CHECK(s != NULL);
    CHECK_EQ_INT(dv_shared_size(s), 100);
    unsigned char *p = dv_shared_data(s);
    CHECK(p != NULL && ((uintptr_t)p & 4095) == 0);
    int zero = 1;
    for (int i = 0; i < 100; i++)
        zero &= p[i] == 0;
    CHECK(zero);
    CHECK_EQ_INT(dv_shared_write(s, 10, "hello", 5, &err), 0);
    CHECK(memcmp(p + 10, "hello", 5) == 0);
    p[99] = 'z';
    char buf[8] = {0};
    CHECK_EQ_INT(dv_shared_read(s, 95, buf, 5, &err), 0);
    CHECK(memcmp(buf, "\0\0\0\0z", 5) == 0);
    CHECK_EQ_INT(dv_shared_read(s, 100, buf, 0, &err), 0);
    dv_shared_destroy(&s);
    CHECK(s == NULL);
    dv_shared_destroy(&s);
    dv_shared_destroy(NULL);

    s = dv_shared_create(0, &err);
    CHECK(s != NULL);
    CHECK_EQ_INT(dv_shared_size(s), 0);
    CHECK(dv_shared_data(s) != NULL);
    CHECK_EQ_INT(dv_shared_read(s, 0, NULL, 0, &err), 0);
    dv_shared_destroy(&s);
}

/* A range outside the block is EINVAL and changes nothing. */
static void test_bounds(void)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_create(100, &err);
    char buf[200];
    memset(buf, 'x', sizeof(buf));
    struct {
        size_t off, len;
    } bad[] = {{101, 0}, {50, 51}, {0, 101}, {1, SIZE_MAX}, {SIZE_MAX, 2}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        err.text[0] = 0;
        CHECK_EQ_INT(dv_shared_write(s, bad[i].off, buf, bad[i].len, &err), -1);
        CHECK_EQ_INT(errno, EINVAL);
        CHECK(strstr(err.text, "outside the block of 100 bytes") != NULL);
        CHECK_EQ_INT(dv_shared_read(s, bad[i].off, buf, bad[i].len, &err), -1);
        CHECK_EQ_INT(errno, EINVAL);
    }
    unsigned char *p = dv_shared_data(s);
    int zero = 1;
    for (int i = 0; i < 100; i++)
        zero &= p[i] == 0;
    CHECK(zero);
    CHECK_EQ_INT(dv_shared_write(s, 0, NULL, 1, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_shared_read(NULL, 0, buf, 1, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_shared_write(NULL, 0, buf, 1, &err), -1);
    CHECK(dv_shared_data(NULL) == NULL);
    CHECK_EQ_INT(dv_shared_size(NULL), 0);
    CHECK_EQ_INT(dv_shared_handle(s, NULL), -1);
    CHECK(dv_shared_create(DV_SHARED_MAX + 1, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    dv_shared_destroy(&s);
}

/* A child attaches from the handle; both see each other's bytes. */
static void test_processes(void)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_create(8192, &err);
    dv_handle_t h;
    CHECK_EQ_INT(dv_shared_handle(s, &h), 0);
    CHECK_EQ_INT(dv_shared_write(s, 8000, "parent", 6, &err), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dv_shared_t *c = dv_shared_attach(&h, NULL);
        char buf[6];
        if (!c || dv_shared_size(c) != 8192 ||
            dv_shared_read(c, 8000, buf, 6, NULL) < 0 ||
            memcmp(buf, "parent", 6) != 0)
            _exit(1);
        memcpy((char *)dv_shared_data(c) + 4096, "mapped", 6);
        if (dv_shared_write(c, 0, "child", 5, NULL) < 0)
            _exit(2);
        dv_shared_destroy(&c);
        _exit(0);
    }
    CHECK_EQ_INT(tq_wait(pid), 0);
    char *p = dv_shared_data(s);
    CHECK(memcmp(p, "child", 5) == 0 && memcmp(p + 4096, "mapped", 6) == 0);

    /* The creator's destroy removes it; an attached copy keeps its bytes. */
    dv_shared_t *a = dv_shared_attach(&h, &err);
    CHECK(a != NULL);
    dv_shared_destroy(&s);
    char buf[5];
    CHECK_EQ_INT(dv_shared_read(a, 0, buf, 5, &err), 0);
    CHECK(memcmp(buf, "child", 5) == 0);
    dv_shared_destroy(&a);
    errno = 0;
    CHECK(dv_shared_attach(&h, &err) == NULL);
    CHECK_EQ_INT(errno, ENOENT);
}

static void test_handles(void)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_create(64, &err);
    dv_handle_t h, forged;
    CHECK_EQ_INT(dv_shared_handle(s, &h), 0);
    forged = h;
    forged.bytes[9] ^= 1; /* the token */
    CHECK(dv_shared_attach(&forged, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(dv_shared_attach(NULL, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    dv_event_t *e = dv_event_create(&err);
    CHECK_EQ_INT(dv_event_handle(e, &forged), 0);
    CHECK(dv_shared_attach(&forged, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(dv_event_attach(&h, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    dv_event_destroy(&e);
    dv_shared_destroy(&s);
}

/* Writers fill the piece at off with their letter until *stop, having
 * said they started on ready (a pipe). */
struct writer {
    dv_shared_t *s;
    size_t off;
    char c;
    int ready;
    int *stop; /* in memory the writers share */
};

static int write_until_stop(const struct writer *w)
{
    char *buf = malloc(PIECE);
    int rc = buf ? 0 : -1;
    if (buf)
        memset(buf, w->c, PIECE);
    if (rc == 0 && write(w->ready, "r", 1) != 1)
        rc = -1;
    while (rc == 0 && !__atomic_load_n(w->stop, __ATOMIC_ACQUIRE))
        rc = dv_shared_write(w->s, w->off, buf, PIECE, NULL);
    free(buf);
    return rc;
}

/* Reads that mix the writers' bytes, out of n. */
static int torn_reads(dv_shared_t *s, size_t off, int n)
{
    char *buf = malloc(PIECE);
    int torn = buf ? 0 : -1;
    for (int i = 0; i < n && torn >= 0; i++) {
        if (dv_shared_read(s, off, buf, PIECE, NULL) < 0)
            torn = -1;
        for (size_t k = 1; torn >= 0 && k < PIECE; k++)
            if (buf[k] != buf[0]) {
                torn++;
                break;
            }
    }
    free(buf);
    return torn;
}

static void wait_ready(int fd, int n)
{
    char c;
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(read(fd, &c, 1), 1);
}

static void test_atomic_processes(void)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_create(PIECE + 100, &err);
    int *stop = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int ready[2];
    CHECK(stop != MAP_FAILED && pipe(ready) == 0);
    *stop = 0;
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        struct writer w = {s, 100, (char)('a' + i), ready[1], stop};
        pids[i] = fork();
        if (pids[i] == 0)
            _exit(write_until_stop(&w) < 0);
    }
    wait_ready(ready[0], 3);
    CHECK_EQ_INT(torn_reads(s, 100, ROUNDS), 0);
    __atomic_store_n(stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(tq_wait(pids[i]), 0);
    munmap(stop, sizeof(int));
    close(ready[0]);
    close(ready[1]);
    dv_shared_destroy(&s);
}

static void *writer_thread(void *arg)
{
    return (void *)(intptr_t)write_until_stop(arg);
}

static void test_atomic_threads(void)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_create(PIECE, &err);
    int stop = 0, ready[2];
    CHECK_EQ_INT(pipe(ready), 0);
    struct writer w[2] = {{s, 0, 'v', ready[1], &stop},
                          {s, 0, 'w', ready[1], &stop}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, writer_thread, &w[i]), 0);
    wait_ready(ready[0], 2);
    CHECK_EQ_INT(torn_reads(s, 0, ROUNDS / 4), 0);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        CHECK(r == NULL);
    }
    close(ready[0]);
    close(ready[1]);
    dv_shared_destroy(&s);
}

/* A process killed while it holds the lock: the next call goes on. */
static void test_dead_holder(void)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_create(16, &err);
    int ready[2];
    CHECK_EQ_INT(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (block_lock(s, NULL) < 0 || write(ready[1], "l", 1) != 1)
            _exit(1);
        pause();
        _exit(1);
    }
    char c;
    CHECK_EQ_INT(read(ready[0], &c, 1), 1);
    kill(pid, SIGKILL);
    CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
    CHECK_EQ_INT(dv_shared_write(s, 0, "after", 5, &err), 0);
    char buf[5];
    CHECK_EQ_INT(dv_shared_read(s, 0, buf, 5, &err), 0);
    CHECK(memcmp(buf, "after", 5) == 0);
    close(ready[0]);
    close(ready[1]);
    dv_shared_destroy(&s);
}

int main(void)
{
    tq_setup("shared");
    test_basics();
    test_bounds();
    test_processes();
    test_handles();
    test_atomic_processes();
    test_atomic_threads();
    test_dead_holder();
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
