/* The head's output writer (src/multinode/mn_out.c): a put never waits for the
 * reader, credit comes back only for bytes written (in order, per node),
 * every byte arrives once the reader reads, and the credit rule. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "multinode/mn_out.h"

#define PIECE 4096
#define PIECES 512 /* 2 MiB: far more than a pipe holds */

static uint64_t acks_within(mn_out_t *o, int node, double seconds)
{
    uint64_t acked[3] = {0, 0, 0};
    struct pollfd p = {mn_out_fd(o), POLLIN, 0};
    if (poll(&p, 1, (int)(seconds * 1000)) > 0)
        mn_out_acks(o, acked);
    return acked[node];
}

struct reader {
    int fd;
    size_t got, bad;
};

static void *read_all(void *arg)
{
    struct reader *r = arg;
    char buf[PIECE];
    ssize_t k;
    while ((k = read(r->fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < k; i++, r->got++)
            r->bad += buf[i] != (char)('a' + (r->got / PIECE) % 26);
    return NULL;
}

/* Nobody reads: every put returns, little credit comes back; then the
 * reader reads everything in order and all the credit comes back. */
static void test_slow_reader(void)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    int saved = dup(1);
    CHECK(dup2(p[1], 1) == 1);
    close(p[1]);
    mn_out_t *o = mn_out_create(3, NULL);
    CHECK(o != NULL);
    char piece[PIECE];
    for (int i = 0; i < PIECES; i++) {
        memset(piece, 'a' + i % 26, sizeof(piece));
        mn_out_put(o, 1, piece, sizeof(piece), 1, sizeof(piece));
    }
    uint64_t early = 0, more;
    while ((more = acks_within(o, 1, 0.3)))
        early += more;
    CHECK(early < (uint64_t)PIECE * PIECES / 2); /* the pipe holds 64 KiB */
    struct reader r = {p[0], 0, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, read_all, &r) == 0);
    uint64_t all = early;
    for (int t = 0; t < 200 && all < (uint64_t)PIECE * PIECES; t++)
        all += acks_within(o, 1, 0.1);
    CHECK_EQ_INT(all, (uint64_t)PIECE * PIECES);
    CHECK_EQ_INT(mn_out_destroy(&o), 0);
    CHECK(o == NULL);
    dup2(saved, 1);
    close(saved);
    pthread_join(th, NULL);
    close(p[0]);
    CHECK_EQ_INT(r.got, (size_t)PIECE * PIECES);
    CHECK_EQ_INT(r.bad, 0);
}

/* Credit of several nodes, with and without bytes, lands on each node. */
static void test_credit_per_node(void)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    int saved = dup(2);
    CHECK(dup2(p[1], 2) == 2);
    close(p[1]);
    mn_out_t *o = mn_out_create(3, NULL);
    mn_out_put(o, 2, "x\n", 2, 1, 2);
    mn_out_put(o, 2, "yy\n", 3, 2, 3);
    mn_out_put(o, 2, NULL, 0, 2, 7); /* a line still buffered elsewhere */
    mn_out_put(o, 2, "-\n", 2, -1, 0);
    uint64_t acked[3] = {0, 0, 0};
    for (int t = 0; t < 100 && (acked[1] != 2 || acked[2] != 10); t++) {
        struct pollfd w = {mn_out_fd(o), POLLIN, 0};
        if (poll(&w, 1, 100) > 0)
            mn_out_acks(o, acked);
    }
    CHECK_EQ_INT(acked[0], 0);
    CHECK_EQ_INT(acked[1], 2);
    CHECK_EQ_INT(acked[2], 10);
    mn_out_destroy(&o);
    dup2(saved, 2);
    close(saved);
    char buf[32] = "";
    CHECK_EQ_INT(read(p[0], buf, sizeof(buf) - 1), 7);
    CHECK(!strcmp(buf, "x\nyy\n-\n"));
    close(p[0]);
    mn_out_destroy(&o); /* NULL: nothing */
}

static void test_credit_rule(void)
{
    CHECK_EQ_INT(mn_out_credit(1), 256 * 1024);
    CHECK_EQ_INT(mn_out_credit(2), 256 * 1024);
    CHECK_EQ_INT(mn_out_credit(65), 128 * 1024);
    CHECK_EQ_INT(mn_out_credit(100000), 16 * 1024);
}

int main(void)
{
    test_slow_reader();
    test_credit_per_node();
    test_credit_rule();
    return CHECK_DONE();
}
