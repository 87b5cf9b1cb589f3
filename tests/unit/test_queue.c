/* Queue semantics: every call and error, timeouts, close, handles (also
 * inside messages, stale and forged), large messages, wrapping the ring,
 * and processes killed with SIGKILL in the middle of a put or a get. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "drover/drover.h"
#include "test_queue_util.h"

#define MiB ((size_t)1 << 20)

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i + 1 < n; i += 4096)
        p[i] = (unsigned char)(seed + i / 4096);
    if (n)
        p[n - 1] = (unsigned char)(seed ^ 0x5a);
}

static int filled(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i + 1 < n; i += 4096)
        if (p[i] != (unsigned char)(seed + i / 4096))
            return 0;
    return n == 0 || p[n - 1] == (unsigned char)(seed ^ 0x5a);
}

static void test_basic(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    CHECK(q != NULL);
    CHECK_EQ_INT(dv_queue_size(q), 0);
    CHECK_EQ_INT(dv_queue_put(q, "hello", 5, -1, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "", 0, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_size(q), 2);
    void *d = NULL;
    size_t n = 99;
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, -1, &err), 0);
    CHECK(n == 5 && d && memcmp(d, "hello", 5) == 0);
    free(d);
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0, &err), 0);
    CHECK(n == 0 && d != NULL);
    free(d);
    d = NULL;
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0, &err), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    CHECK(d == NULL);
    double t0 = tq_now();
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0.05, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK(tq_now() - t0 >= 0.045 && tq_now() - t0 < 2);
    CHECK(strstr(err.text, "timed out") != NULL);
    dv_queue_destroy(&q);
    CHECK(q == NULL);
    dv_queue_destroy(&q);
    dv_queue_destroy(NULL);
}

static void test_errors(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    void *d;
    size_t n;
    CHECK_EQ_INT(dv_queue_put(NULL, "x", 1, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_put(q, NULL, 1, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_get(q, NULL, &n, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_get(NULL, &d, &n, 0, NULL), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_put(q, "x", DV_MESSAGE_MAX + 1, 0, &err), -1);
    CHECK_EQ_INT(errno, EMSGSIZE);
    CHECK(strstr(err.text, "over the limit") != NULL);
    CHECK_EQ_INT(dv_queue_size(NULL), -1);
    CHECK_EQ_INT(dv_queue_close(NULL), -1);
    dv_handle_t h;
    CHECK_EQ_INT(dv_queue_handle(NULL, &h), -1);
    CHECK_EQ_INT(dv_queue_handle(q, NULL), -1);
    CHECK(dv_queue_attach(NULL, &err) == NULL && errno == EINVAL);
    CHECK_EQ_INT(dv_queue_size(q), 0);
    dv_queue_destroy(&q);
}

static void test_maxsize(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(2, &err);
    CHECK_EQ_INT(dv_queue_put(q, "a", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "b", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "c", 1, 0, &err), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    CHECK_EQ_INT(dv_queue_put(q, "c", 1, 0.03, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    /* A consumer in another process frees a place for a blocked put. */
    pid_t pid = fork();
    if (pid == 0) {
        tq_sleep_ms(30);
        void *d;
        size_t n;
        int ok = dv_queue_get(q, &d, &n, -1, NULL) == 0 && n == 1 &&
                 *(char *)d == 'a';
        _exit(ok ? 0 : 1);
    }
    CHECK_EQ_INT(dv_queue_put(q, "c", 1, 10, &err), 0);
    CHECK_EQ_INT(tq_wait(pid), 0);
    CHECK_EQ_INT(dv_queue_size(q), 2);
    dv_queue_destroy(&q);
}

static void test_close(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    pid_t pid = fork();
    if (pid == 0) { /* blocked get, woken by close after the drain */
        void *d;
        size_t n;
        int got = 0;
        while (dv_queue_get(q, &d, &n, -1, NULL) == 0) {
            got++;
            free(d);
        }
        _exit(errno == EPIPE && got == 2 ? 0 : 1);
    }
    CHECK_EQ_INT(dv_queue_put(q, "a", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "b", 1, 0, &err), 0);
    tq_sleep_ms(50);
    CHECK_EQ_INT(dv_queue_close(q), 0);
    CHECK_EQ_INT(dv_queue_put(q, "c", 1, -1, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    CHECK_EQ_INT(tq_wait(pid), 0);
    void *d;
    size_t n;
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, -1, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    CHECK(strstr(err.text, "closed") != NULL);
    CHECK_EQ_INT(dv_queue_close(q), 0);
    dv_queue_destroy(&q);
}

/* Messages of growing sizes, a few always in flight, so the ring wraps
 * several times; FIFO and contents hold throughout. */
static void test_wrap(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    unsigned char *buf = malloc(9 * MiB);
    unsigned put = 0, got = 0;
    for (; put < 400; put++) {
        size_t len = (put * 7919u) % (9 * MiB);
        fill(buf, len, put);
        CHECK_EQ_INT(dv_queue_put(q, buf, len, -1, &err), 0);
        while (put - got >= 3) {
            void *d;
            size_t n;
            CHECK_EQ_INT(dv_queue_get(q, &d, &n, -1, &err), 0);
            CHECK(n == (got * 7919u) % (9 * MiB) && filled(d, n, got));
            free(d);
            got++;
        }
    }
    CHECK_EQ_INT(dv_queue_size(q), 3);
    free(buf);
    dv_queue_destroy(&q);
}

/* A bounded queue of same-size messages that consumers keep up with wraps
 * early (to reuse warm pages); in one process, puts must never wait before
 * maxsize messages wait. Then mixed sizes, with the consumer in another
 * process, across many laps. */
static void test_wrap_bounded(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(4, &err);
    unsigned char *buf = malloc(9 * MiB);
    unsigned got = 0;
    for (unsigned i = 0; i < 2000; i++) {
        fill(buf, MiB, i);
        CHECK_EQ_INT(dv_queue_put(q, buf, MiB, 0, &err), 0);
        if (dv_queue_size(q) == 4) {
            CHECK_EQ_INT(dv_queue_put(q, buf, MiB, 0, &err), -1);
            CHECK_EQ_INT(errno, EAGAIN);
            void *d;
            size_t n;
            CHECK_EQ_INT(dv_queue_get(q, &d, &n, 0, &err), 0);
            CHECK(n == MiB && filled(d, n, got));
            free(d);
            got++;
        }
    }
    void *d;
    size_t n;
    while (dv_queue_get(q, &d, &n, 0, &err) == 0) /* leftovers */
        free(d);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = 1;
        for (unsigned i = 0; ok && i < 300; i++) {
            size_t len = (i * 104729u) % (9 * MiB);
            fill(buf, len, i);
            ok = dv_queue_put(q, buf, len, 20, NULL) == 0;
        }
        _exit(ok ? 0 : 1);
    }
    for (unsigned i = 0; i < 300; i++) {
        CHECK_EQ_INT(dv_queue_get(q, &d, &n, 20, &err), 0);
        CHECK(n == (i * 104729u) % (9 * MiB) && filled(d, n, i));
        free(d);
    }
    CHECK_EQ_INT(tq_wait(pid), 0);
    free(buf);
    dv_queue_destroy(&q);
}

static void test_handles(void)
{
    dv_error_t err;
    dv_queue_t *a = dv_queue_create(0, &err), *b = dv_queue_create(0, &err);
    dv_handle_t hb;
    CHECK_EQ_INT(dv_queue_handle(b, &hb), 0);
    /* A handle travels inside a message; the child attaches and answers. */
    CHECK_EQ_INT(dv_queue_put(a, &hb, sizeof(hb), 0, &err), 0);
    pid_t pid = fork();
    if (pid == 0) {
        void *d;
        size_t n;
        if (dv_queue_get(a, &d, &n, 5, NULL) < 0 || n != sizeof(hb))
            _exit(1);
        dv_queue_t *c = dv_queue_attach(d, NULL);
        free(d);
        int ok = c && dv_queue_put(c, "pong", 4, 0, NULL) == 0;
        dv_queue_destroy(&c); /* only detaches */
        _exit(ok ? 0 : 2);
    }
    CHECK_EQ_INT(tq_wait(pid), 0);
    void *d;
    size_t n;
    CHECK_EQ_INT(dv_queue_get(b, &d, &n, 1, &err), 0);
    CHECK(n == 4 && memcmp(d, "pong", 4) == 0);
    free(d);

    dv_handle_t forged = hb;
    forged.bytes[9] ^= 1; /* the token */
    CHECK(dv_queue_attach(&forged, &err) == NULL && errno == EINVAL);
    memset(&forged, 0x41, sizeof(forged));
    CHECK(dv_queue_attach(&forged, &err) == NULL && errno == EINVAL);
    dv_event_t *e = dv_event_create(&err);
    dv_handle_t he;
    CHECK_EQ_INT(dv_event_handle(e, &he), 0);
    CHECK(dv_queue_attach(&he, &err) == NULL && errno == EINVAL);
    dv_event_destroy(&e);

    dv_queue_t *b2 = dv_queue_attach(&hb, &err);
    CHECK(b2 != NULL);
    dv_queue_destroy(&b); /* the creator's copy: removes the queue */
    CHECK(dv_queue_attach(&hb, &err) == NULL && errno == ENOENT);
    CHECK(strstr(err.text, "no such object") != NULL);
    CHECK_EQ_INT(dv_queue_put(b2, "x", 1, 0, &err), -1); /* closed */
    CHECK_EQ_INT(errno, EPIPE);
    dv_queue_destroy(&b2);
    dv_queue_destroy(&a);
}

static void test_large(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned char *p = malloc(DV_MESSAGE_MAX);
        int ok = p != NULL;
        for (unsigned i = 0; ok && i < 3; i++) {
            fill(p, DV_MESSAGE_MAX - i, i);
            ok = dv_queue_put(q, p, DV_MESSAGE_MAX - i, -1, NULL) == 0;
        }
        _exit(ok ? 0 : 1);
    }
    for (unsigned i = 0; i < 3; i++) {
        void *d = NULL;
        size_t n = 0;
        CHECK_EQ_INT(dv_queue_get(q, &d, &n, 30, &err), 0);
        CHECK(n == DV_MESSAGE_MAX - i && filled(d, n, i));
        free(d);
    }
    CHECK_EQ_INT(tq_wait(pid), 0);
    dv_queue_destroy(&q);
}

/* Get everything left; each message must be intact. Returns the count. */
static int drain_intact(dv_queue_t *q, size_t len)
{
    int n = 0;
    void *d;
    size_t got;
    while (dv_queue_get(q, &d, &got, 0.5, NULL) == 0) {
        CHECK(got == len && filled(d, got, 7));
        free(d);
        n++;
    }
    CHECK_EQ_INT(errno, ETIMEDOUT);
    return n;
}

/* A producer killed while copying a big message, then one killed while
 * blocked on a full queue: the others go on, the dead one's half-written
 * message is skipped. The first child is drained before it is reaped, so
 * it is a zombie meanwhile. */
static void test_kill_put(void)
{
    dv_error_t err;
    for (int trial = 0; trial < 3; trial++) {
        dv_queue_t *q = dv_queue_create(0, &err);
        pid_t pid = fork();
        if (pid == 0) {
            unsigned char *p = malloc(32 * MiB);
            fill(p, 32 * MiB, 7);
            for (;;)
                dv_queue_put(q, p, 32 * MiB, -1, NULL);
        }
        tq_sleep_ms(20 + 7 * trial);
        kill(pid, SIGKILL);
        int got = drain_intact(q, 32 * MiB);
        /* The half-written message is not left unfinished (a join would
         * wait for it for ever). */
        CHECK_EQ_INT(dv_queue_unfinished(q), got);
        CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
        CHECK_EQ_INT(dv_queue_put(q, "ok", 2, 0, &err), 0);
        void *d;
        size_t n;
        CHECK_EQ_INT(dv_queue_get(q, &d, &n, 1, &err), 0);
        CHECK(n == 2 && memcmp(d, "ok", 2) == 0);
        free(d);
        dv_queue_destroy(&q);
    }
    dv_queue_t *q = dv_queue_create(1, &err);
    CHECK_EQ_INT(dv_queue_put(q, "a", 1, 0, &err), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dv_queue_put(q, "b", 1, -1, NULL); /* blocks: full */
        _exit(3);
    }
    tq_sleep_ms(30);
    kill(pid, SIGKILL);
    CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
    void *d;
    size_t n;
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 1, &err), 0);
    free(d);
    CHECK_EQ_INT(dv_queue_put(q, "c", 1, 1, &err), 0);
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 1, &err), 0);
    CHECK(n == 1 && *(char *)d == 'c');
    free(d);
    dv_queue_destroy(&q);
}

/* A consumer killed while copying a big message out holds that message's
 * space; producers must reclaim it to put more than the ring holds. */
static void test_kill_get(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    unsigned char *p = malloc(DV_MESSAGE_MAX);
    fill(p, DV_MESSAGE_MAX, 7);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(dv_queue_put(q, p, DV_MESSAGE_MAX, 0, &err), 0);
    pid_t pid = fork();
    if (pid == 0) {
        void *d;
        size_t n;
        for (;;) {
            if (dv_queue_get(q, &d, &n, -1, NULL) == 0)
                free(d);
        }
    }
    tq_sleep_ms(15);
    kill(pid, SIGKILL);
    CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
    /* 10 x 64 MiB more than the 512 MiB ring: needs the dead one's space. */
    pid_t prod = fork();
    if (prod == 0) {
        int ok = 1;
        for (int i = 0; ok && i < 10; i++)
            ok = dv_queue_put(q, p, DV_MESSAGE_MAX, 20, NULL) == 0;
        _exit(ok ? 0 : 1);
    }
    int got = drain_intact(q, DV_MESSAGE_MAX);
    CHECK_EQ_INT(tq_wait(prod), 0);
    got += drain_intact(q, DV_MESSAGE_MAX);
    CHECK(got >= 10 && got <= 14);
    free(p);
    dv_queue_destroy(&q);
}

/* A consumer killed while asleep in get must not take later messages. */
static void test_kill_sleeping_get(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    pid_t pid = fork();
    if (pid == 0) {
        void *d;
        size_t n;
        dv_queue_get(q, &d, &n, -1, NULL);
        _exit(3);
    }
    tq_sleep_ms(30);
    kill(pid, SIGKILL);
    CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
    CHECK_EQ_INT(dv_queue_put(q, "z", 1, 0, &err), 0);
    void *d;
    size_t n;
    CHECK_EQ_INT(dv_queue_get(q, &d, &n, 1, &err), 0);
    CHECK(n == 1 && *(char *)d == 'z');
    free(d);
    dv_queue_destroy(&q);
}

int main(void)
{
    tq_setup("queue");
    test_basic();
    test_errors();
    test_maxsize();
    test_close();
    test_wrap();
    test_wrap_bounded();
    test_handles();
    test_large();
    test_kill_put();
    test_kill_get();
    test_kill_sleeping_get();
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
