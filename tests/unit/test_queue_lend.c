/* Gets without the malloc'd copy: dv_queue_get_into (the caller's buffer;
 * a message too large stays in the queue) and dv_queue_get_lend /
 * dv_queue_lend_release (read in place; the bytes are not reused while
 * the view is held; wrong and second releases; views of a handle that is
 * destroyed, of a process that dies holding them, of another process),
 * with threads under TSan. White-box: built with queue.c included, to
 * see the ring's positions and to shrink it. */
#include "lib/queue.c"

#include <pthread.h>

#include "check.h"
#include "test_queue_util.h"

#define MiB ((size_t)1 << 20)

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static int filled(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

static int put_filled(dv_queue_t *q, size_t n, unsigned seed, double t)
{
    unsigned char *b = malloc(n ? n : 1);
    fill(b, n, seed);
    int rc = dv_queue_put(q, b, n, t, NULL);
    free(b);
    return rc;
}

/* Everything taken and released: nothing of the ring is in use. */
static int ring_free(const dv_queue_t *q)
{
    return q->sh->rel == q->sh->alloc && q->sh->head == q->sh->alloc;
}

static void test_into(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    CHECK(q != NULL);
    CHECK_EQ_INT(dv_queue_put(q, "hello", 5, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "", 0, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "abc", 3, 0, &err), 0);
    char buf[16] = {0};
    size_t n = 0;
    /* Too small: fails, reports the size, leaves it first in the queue. */
    CHECK_EQ_INT(dv_queue_get_into(q, buf, 4, &n, 0, &err), -1);
    CHECK_EQ_INT(errno, EMSGSIZE);
    CHECK_EQ_INT(n, 5);
    CHECK(strstr(err.text, "5 bytes") != NULL);
    CHECK_EQ_INT(dv_queue_size(q), 3);
    CHECK_EQ_INT(dv_queue_get_into(q, buf, 5, &n, 0, &err), 0);
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK_EQ_INT(dv_queue_get_into(q, NULL, 0, &n, 0, &err), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(dv_queue_get_into(q, buf, 0, &n, 0, &err), -1);
    CHECK_EQ_INT(errno, EMSGSIZE);
    CHECK_EQ_INT(dv_queue_get_into(q, buf, sizeof(buf), &n, 0, &err), 0);
    CHECK(n == 3 && memcmp(buf, "abc", 3) == 0);
    CHECK(ring_free(q));
    /* Empty: EAGAIN without waiting, ETIMEDOUT after the timeout. */
    CHECK_EQ_INT(dv_queue_get_into(q, buf, sizeof(buf), &n, 0, &err), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    double t0 = tq_now();
    CHECK_EQ_INT(dv_queue_get_into(q, buf, sizeof(buf), &n, 0.05, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK(tq_now() - t0 >= 0.045);
    /* Bad arguments. */
    CHECK_EQ_INT(dv_queue_get_into(NULL, buf, 1, &n, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_get_into(q, NULL, 1, &n, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_get_into(q, buf, 1, NULL, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    /* Closed: drains, then EPIPE. */
    CHECK_EQ_INT(dv_queue_put(q, "z", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_close(q), 0);
    CHECK_EQ_INT(dv_queue_get_into(q, buf, sizeof(buf), &n, -1, &err), 0);
    CHECK(n == 1 && buf[0] == 'z');
    CHECK_EQ_INT(dv_queue_get_into(q, buf, sizeof(buf), &n, -1, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    dv_queue_destroy(&q);
}

static void test_into_big(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(2, &err);
    CHECK_EQ_INT(put_filled(q, 3 * MiB, 9, 0), 0);
    unsigned char *b = malloc(3 * MiB);
    size_t n = 0;
    CHECK_EQ_INT(dv_queue_get_into(q, b, 3 * MiB - 1, &n, 0, &err), -1);
    CHECK(errno == EMSGSIZE && n == 3 * MiB);
    CHECK_EQ_INT(dv_queue_get_into(q, b, 3 * MiB, &n, 0, &err), 0);
    CHECK(n == 3 * MiB && filled(b, n, 9));
    free(b);
    dv_queue_destroy(&q);
}

static void test_lend(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err), *other = dv_queue_create(0, &err);
    CHECK(q && other);
    CHECK_EQ_INT(dv_queue_put(q, "one", 3, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "two", 3, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(other, "x", 1, 0, &err), 0);
    dv_queue_view_t v1, v2, vo, ve;
    CHECK_EQ_INT(dv_queue_get_lend(q, &v1, 0, &err), 0);
    CHECK(v1.len == 3 && memcmp(v1.data, "one", 3) == 0);
    CHECK_EQ_INT(dv_queue_size(q), 1);
    CHECK_EQ_INT(dv_queue_get_lend(q, &v2, 0, &err), 0);
    CHECK(v2.len == 3 && memcmp(v2.data, "two", 3) == 0);
    CHECK_EQ_INT(dv_queue_get_lend(other, &vo, 0, &err), 0);
    /* Empty while views are out: EAGAIN, ETIMEDOUT. */
    CHECK_EQ_INT(dv_queue_get_lend(q, &ve, 0, &err), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    CHECK(ve.data == NULL);
    CHECK_EQ_INT(dv_queue_get_lend(q, &ve, 0.05, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    /* Out of order; a copy released again; through the wrong queue. */
    dv_queue_view_t copy = v2;
    CHECK_EQ_INT(dv_queue_lend_release(q, &v2, &err), 0);
    CHECK(v2.data == NULL && v2.len == 0);
    CHECK(!ring_free(q)); /* "one" still pins the ring */
    CHECK_EQ_INT(dv_queue_lend_release(q, &copy, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(strstr(err.text, "released already") != NULL);
    CHECK_EQ_INT(dv_queue_lend_release(q, &v2, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_lend_release(other, &v1, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_queue_lend_release(NULL, &v1, &err), -1);
    CHECK_EQ_INT(dv_queue_lend_release(q, NULL, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    /* A view stays valid after close; gets drain, then EPIPE. */
    CHECK_EQ_INT(dv_queue_put(q, "three", 5, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_close(q), 0);
    CHECK(memcmp(v1.data, "one", 3) == 0);
    CHECK_EQ_INT(dv_queue_get_lend(q, &v2, -1, &err), 0);
    CHECK(v2.len == 5 && memcmp(v2.data, "three", 5) == 0);
    CHECK_EQ_INT(dv_queue_get_lend(q, &ve, -1, &err), -1);
    CHECK_EQ_INT(errno, EPIPE);
    CHECK_EQ_INT(dv_queue_lend_release(q, &v1, &err), 0);
    CHECK_EQ_INT(dv_queue_lend_release(q, &v2, &err), 0);
    CHECK(ring_free(q));
    CHECK_EQ_INT(dv_queue_get_lend(NULL, &ve, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(vo.len == 1 && !ring_free(other));
    dv_queue_destroy(&other); /* holding a view: destroy gives it back */
    dv_queue_destroy(&q);
}

/* The lent bytes are not reused while held, though all else is free: a
 * drained queue restarts at the front of its ring, where the view is. */
static void test_lend_pins(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    CHECK_EQ_INT(put_filled(q, MiB, 1, 0), 0);
    dv_queue_view_t v;
    CHECK_EQ_INT(dv_queue_get_lend(q, &v, 0, &err), 0);
    CHECK_EQ_INT(v.len, MiB);
    unsigned char *b = malloc(MiB);
    size_t n;
    for (unsigned i = 0; i < 8; i++) {
        CHECK_EQ_INT(put_filled(q, MiB, 50 + i, 0), 0);
        CHECK_EQ_INT(dv_queue_get_into(q, b, MiB, &n, 0, &err), 0);
        CHECK(filled(b, n, 50 + i));
    }
    CHECK(filled(v.data, v.len, 1));
    CHECK_EQ_INT(dv_queue_lend_release(q, &v, &err), 0);
    CHECK(ring_free(q));
    free(b);
    dv_queue_destroy(&q);
}

/* A 4 MiB ring (white-box), so that a held view fills it quickly. */
static dv_queue_t *small_ring(void)
{
    dv_queue_t *q = dv_queue_create(0, NULL);
    q->sh->heap_cap = 4 * MiB;
    q->mask = 4 * MiB - 1;
    return q;
}

/* Put and take 1 MiB messages until a put fails (its errno), or n went
 * through (0). */
static int cycle(dv_queue_t *q, int n, double timeout_s)
{
    unsigned char *b = malloc(MiB);
    size_t len;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (put_filled(q, MiB, (unsigned)i, timeout_s) < 0)
            rc = errno;
        else if (dv_queue_get_into(q, b, MiB, &len, 0, NULL) < 0)
            rc = -1;
    }
    free(b);
    return rc;
}

static void test_lend_space(void)
{
    dv_error_t err;
    dv_queue_t *q = small_ring();
    dv_queue_view_t v;
    /* Held here: puts run out of space; after the release they go on. */
    CHECK_EQ_INT(put_filled(q, MiB, 3, 0), 0);
    CHECK_EQ_INT(dv_queue_get_lend(q, &v, 0, &err), 0);
    CHECK_EQ_INT(cycle(q, 8, 0.1), ETIMEDOUT);
    CHECK(filled(v.data, v.len, 3));
    CHECK_EQ_INT(dv_queue_lend_release(q, &v, &err), 0);
    CHECK_EQ_INT(cycle(q, 8, 0.1), 0);
    /* Held by a process that dies: a put that needs the space frees it. */
    CHECK_EQ_INT(put_filled(q, MiB, 4, 0), 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(dv_queue_get_lend(q, &v, 0, NULL) == 0 ? 0 : 1);
    CHECK_EQ_INT(tq_wait(pid), 0);
    CHECK(!ring_free(q));
    double t0 = tq_now();
    CHECK_EQ_INT(cycle(q, 8, 5), 0);
    CHECK(tq_now() - t0 < 2);
    /* Held by another process, which lives: released only by it. */
    CHECK_EQ_INT(put_filled(q, MiB, 5, 0), 0);
    CHECK_EQ_INT(dv_queue_get_lend(q, &v, 0, &err), 0);
    pid = fork();
    if (pid == 0)
        _exit(dv_queue_lend_release(q, &v, NULL) == -1 && errno == EINVAL ? 0
                                                                          : 1);
    CHECK_EQ_INT(tq_wait(pid), 0);
    CHECK_EQ_INT(dv_queue_lend_release(q, &v, &err), 0);
    CHECK(ring_free(q));
    dv_queue_destroy(&q);
}

/* Destroying a handle gives back the views lent through it, and only
 * those. */
static void test_lend_destroy(void)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    dv_handle_t h;
    dv_queue_handle(q, &h);
    dv_queue_t *q2 = dv_queue_attach(&h, &err);
    CHECK(q2 != NULL);
    CHECK_EQ_INT(dv_queue_put(q, "a", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "b", 1, 0, &err), 0);
    dv_queue_view_t va, vb;
    CHECK_EQ_INT(dv_queue_get_lend(q, &va, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_get_lend(q2, &vb, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_lend_release(q, &vb, &err), -1); /* q2's */
    CHECK_EQ_INT(errno, EINVAL);
    dv_queue_destroy(&q2);
    CHECK(q->sh->rel != q->sh->alloc); /* va still holds */
    CHECK_EQ_INT(dv_queue_lend_release(q, &va, &err), 0);
    CHECK(ring_free(q));
    dv_queue_destroy(&q);
}

/* Threads: two producers, a lending consumer and an into consumer. */
#define PER 1500

struct tally {
    dv_queue_t *q;
    int lend;
    long got, bad;
};

static void *produce(void *arg)
{
    dv_queue_t *q = arg;
    unsigned char b[3000];
    for (int i = 0; i < PER; i++) {
        size_t n = (size_t)(i * 37) % sizeof(b);
        fill(b, n, (unsigned)n);
        if (dv_queue_put(q, b, n, 10, NULL) < 0)
            return (void *)1;
    }
    return NULL;
}

static void *consume(void *arg)
{
    struct tally *t = arg;
    unsigned char b[2048];
    for (;;) {
        size_t n = 0;
        dv_queue_view_t v;
        if (t->lend) {
            if (dv_queue_get_lend(t->q, &v, 10, NULL) < 0)
                break;
            t->bad += !filled(v.data, v.len, (unsigned)v.len);
            t->bad += dv_queue_lend_release(t->q, &v, NULL) < 0;
        } else if (dv_queue_get_into(t->q, b, sizeof(b), &n, 10, NULL) == 0) {
            t->bad += !filled(b, n, (unsigned)n);
        } else if (errno == EMSGSIZE) {
            if (dv_queue_get_lend(t->q, &v, 0, NULL) < 0)
                continue; /* the other consumer took it */
            t->bad += !filled(v.data, v.len, (unsigned)v.len);
            t->bad += dv_queue_lend_release(t->q, &v, NULL) < 0;
        } else {
            break;
        }
        t->got++;
    }
    t->bad += errno != EPIPE;
    return NULL;
}

static void test_threads(void)
{
    dv_queue_t *q = dv_queue_create(8, NULL);
    pthread_t p[2], c[2];
    struct tally t[2] = {{q, 1, 0, 0}, {q, 0, 0, 0}};
    for (int i = 0; i < 2; i++) {
        pthread_create(&c[i], NULL, consume, &t[i]);
        pthread_create(&p[i], NULL, produce, q);
    }
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(p[i], &r);
        CHECK(r == NULL);
    }
    dv_queue_close(q);
    for (int i = 0; i < 2; i++)
        pthread_join(c[i], NULL);
    CHECK_EQ_INT(t[0].got + t[1].got, 2 * PER);
    CHECK_EQ_INT(t[0].bad + t[1].bad, 0);
    CHECK(t[0].got > 0 && t[1].got > 0);
    CHECK(ring_free(q));
    dv_queue_destroy(&q);
}

int main(void)
{
    tq_setup("qlend");
    test_into();
    test_into_big();
    test_lend();
    test_lend_pins();
    test_lend_space();
    test_lend_destroy();
    test_threads();
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
