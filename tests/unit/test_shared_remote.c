/* Shared memory blocks of another node (src/lib/shared.c over remote.c,
 * served by remote_serve.c behind the data port of src/multinode/mn_data.c),
 * on loopback: the test plays node 0, and a child plays node 1, the
 * blocks' home: it creates them, hands their handles over, and serves
 * them on its data port.
 *   bytes    a relay has no mapping, its size came from the home; what
 *            it writes is in the home's mapping and what the home wrote
 *            reads back; ranges outside are EINVAL on both sides, a
 *            malformed request EPROTO
 *   big      a range longer than DV_SHARED_ATOMIC_MAX goes in pieces
 *   atomic   reads of a relay are never torn by writers on both nodes
 *   handles  a stale handle is ENOENT at attach, a forged one EINVAL */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "multinode/mn.h"
#include "drover/drover.h"
#include "lib/remote.h"
#include "lib/remote_wire.h"
#include "lib/runtime.h"
#include "test_queue_util.h"

#define SMALL 100
#define BIG (2 * DV_SHARED_ATOMIC_MAX + 100)
#define PIECE ((size_t)256 << 10)

enum { B_SMALL, B_BIG, B_PIECE, B_GONE, NBLOCK };

static const uint8_t token[DV_DATA_TOKEN] = "a test's data token, 32 bytes..";
static char dir[128];

/* What the home hands over: its port and the blocks' handles. */
struct home {
    int port;
    dv_handle_t h[NBLOCK];
};

/* ---- node 1: the home ---- */

static int cmd[2], ack[2];

/* Writers fill the piece with their letter until *stop. */
static int write_until_stop(dv_shared_t *s, char c, const int *stop, int ready)
{
    char *buf = malloc(PIECE);
    int rc = buf ? 0 : -1;
    if (buf)
        memset(buf, c, PIECE);
    if (rc == 0 && write(ready, "r", 1) != 1)
        rc = -1;
    while (rc == 0 && !__atomic_load_n(stop, __ATOMIC_ACQUIRE))
        rc = dv_shared_write(s, 0, buf, PIECE, NULL);
    free(buf);
    return rc;
}

static int make_blocks(dv_shared_t **b, struct home *hm)
{
    static const size_t size[NBLOCK] = {SMALL, BIG, PIECE, 8};
    for (int i = 0; i < NBLOCK; i++)
        if (!(b[i] = dv_shared_create(size[i], NULL)) ||
            dv_shared_handle(b[i], &hm->h[i]) < 0)
            return -1;
    memcpy((char *)dv_shared_data(b[B_SMALL]) + 50, "home", 4);
    dv_shared_destroy(&b[B_GONE]);
    return 0;
}

/* Commands: 'r' send the small block's first 8 bytes, 'w' start a writer
 * of the piece here (answered once it writes), 's' stop it, 'q' quit. */
static void run_commands(dv_shared_t **b)
{
    int *stop = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t writer = -1;
    char c;
    while (stop != MAP_FAILED && read(cmd[0], &c, 1) == 1 && c != 'q') {
        if (c == 'r') {
            (void)!write(ack[1], dv_shared_data(b[B_SMALL]), 8);
        } else if (c == 'w') {
            *stop = 0;
            if ((writer = fork()) == 0)
                _exit(write_until_stop(b[B_PIECE], 'h', stop, ack[1]) < 0);
        } else if (c == 's') {
            __atomic_store_n(stop, 1, __ATOMIC_RELEASE);
            int code = tq_wait(writer);
            (void)!write(ack[1], &code, 1);
        }
    }
}

static void home_node(void)
{
    struct home hm = {0};
    dv_shared_t *b[NBLOCK] = {NULL};
    dv_error_t err;
    setenv(DV_ENV_NODE_COUNT, "2", 1);
    setenv(DV_ENV_NODE_INDEX, "1", 1);
    mn_data_t *d = NULL;
    int lfd = dv__node_init(NULL) == 0 && make_blocks(b, &hm) == 0
                  ? mn_data_listen("127.0.0.1", &hm.port, &err)
                  : -1;
    if (lfd < 0 || !(d = mn_data_start(lfd, token, NULL, NULL, &err)))
        hm.port = 0;
    (void)!write(ack[1], &hm, sizeof(hm));
    if (d)
        run_commands(b);
    mn_data_stop(&d);
    for (int i = 0; i < NBLOCK; i++)
        dv_shared_destroy(&b[i]);
    _exit(0);
}

static pid_t start_home(struct home *hm)
{
    CHECK(pipe(cmd) == 0 && pipe(ack) == 0);
    pid_t pid = fork();
    if (pid == 0)
        home_node();
    CHECK(read(ack[0], hm, sizeof(*hm)) == sizeof(*hm) && hm->port > 0);
    return pid;
}

static void home_says(char c, void *answer, size_t len)
{
    CHECK_EQ_INT(write(cmd[1], &c, 1), 1);
    if (len)
        CHECK_EQ_INT(read(ack[0], answer, len), (long long)len);
}

/* ---- node 0: the test ---- */

/* This process is node 0 of 2; node 1's data port is port. */
static void node_table(int port)
{
    char path[256];
    snprintf(dir, sizeof(dir), "/tmp/dv_test_shrem.%ld", (long)getpid());
    CHECK_EQ_INT(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/token", dir);
    FILE *f = fopen(path, "w");
    CHECK(f && fwrite(token, 1, sizeof(token), f) == sizeof(token));
    fclose(f);
    snprintf(path, sizeof(path), "%s/nodes", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "0 1 1 0 here 127.0.0.1 0\n1 2 1 0 there 127.0.0.1 %d\n", port);
    fclose(f);
    setenv(DV_ENV_RUNDIR, dir, 1);
    setenv(DV_ENV_NODE_TABLE, path, 1);
    setenv(DV_ENV_NODE_COUNT, "2", 1);
    setenv(DV_ENV_NODE_INDEX, "0", 1);
    CHECK_EQ_INT(dv__node_init(NULL), 0);
}

static void clean_dir(void)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/token", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/nodes", dir);
    unlink(path);
    rmdir(dir);
}

/* A raw request to the home: rc, with errno. */
static int raw_op(dv_shared_t *s, int op, const void *in, size_t len)
{
    dv_handle_t h;
    dv_error_t err;
    dv_shared_handle(s, &h);
    dv__remote_t *r = dv__remote_open(&h, 1, &err);
    void *out = NULL;
    size_t n = 0;
    int rc = dv__remote_op(r, op, 0, in, len, NULL, &out, &n, &err);
    int e = errno;
    free(out);
    dv__remote_close(&r);
    errno = e;
    return rc;
}

static void test_bytes(const struct home *hm)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_attach(&hm->h[B_SMALL], &err);
    CHECK(s != NULL);
    CHECK(dv_shared_data(s) == NULL);
    CHECK_EQ_INT(dv_shared_size(s), SMALL);
    dv_handle_t h;
    CHECK_EQ_INT(dv_shared_handle(s, &h), 0);
    CHECK(memcmp(&h, &hm->h[B_SMALL], sizeof(h)) == 0);
    char buf[SMALL];
    CHECK_EQ_INT(dv_shared_read(s, 50, buf, 4, &err), 0);
    CHECK(memcmp(buf, "home", 4) == 0);
    CHECK_EQ_INT(dv_shared_write(s, 0, "remote!", 8, &err), 0);
    home_says('r', buf, 8);
    CHECK(memcmp(buf, "remote!", 8) == 0);
    CHECK_EQ_INT(dv_shared_read(s, 0, buf, SMALL, &err), 0);
    CHECK(memcmp(buf, "remote!", 8) == 0 && memcmp(buf + 50, "home", 4) == 0);

    CHECK_EQ_INT(dv_shared_read(s, SMALL, buf, 1, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_shared_write(s, 1, buf, SMALL, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    /* The home checks on its own. */
    uint64_t rd[2] = {SMALL - 1, 2};
    CHECK_EQ_INT(raw_op(s, DV_ROP_SHARED_READ, rd, sizeof(rd)), -1);
    CHECK_EQ_INT(errno, EINVAL);
    unsigned char wr[10] = {0};
    uint64_t at = SMALL - 1;
    memcpy(wr, &at, sizeof(at));
    CHECK_EQ_INT(raw_op(s, DV_ROP_SHARED_WRITE, wr, sizeof(wr)), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(raw_op(s, DV_ROP_SHARED_READ, wr, 3), -1);
    CHECK_EQ_INT(errno, EPROTO);
    CHECK_EQ_INT(raw_op(s, DV_ROP_SHARED_WRITE, wr, 3), -1);
    CHECK_EQ_INT(errno, EPROTO);
    CHECK_EQ_INT(raw_op(s, 29, NULL, 0), -1);
    CHECK_EQ_INT(errno, EINVAL);
    home_says('r', buf, 8);
    CHECK(memcmp(buf, "remote!", 8) == 0);
    dv_shared_destroy(&s);
}

static void test_big(const struct home *hm)
{
    dv_error_t err;
    dv_shared_t *s = dv_shared_attach(&hm->h[B_BIG], &err);
    CHECK(s != NULL);
    CHECK_EQ_INT(dv_shared_size(s), BIG);
    unsigned char *a = malloc(BIG), *b = malloc(BIG);
    CHECK(a && b);
    for (size_t i = 0; i < BIG; i++)
        a[i] = (unsigned char)(i * 7 + i / 4099);
    CHECK_EQ_INT(dv_shared_write(s, 0, a, BIG, &err), 0);
    memset(b, 0, BIG);
    CHECK_EQ_INT(dv_shared_read(s, 0, b, BIG, &err), 0);
    CHECK(memcmp(a, b, BIG) == 0);
    size_t off = DV_SHARED_ATOMIC_MAX - 5, len = DV_SHARED_ATOMIC_MAX + 50;
    memset(b, 0, BIG);
    CHECK_EQ_INT(dv_shared_read(s, off, b, len, &err), 0);
    CHECK(memcmp(a + off, b, len) == 0);
    free(a);
    free(b);
    dv_shared_destroy(&s);
}

/* Reads of a relay that mix writers' bytes, out of n. */
static int torn_reads(dv_shared_t *s, int n)
{
    char *buf = malloc(PIECE);
    int torn = buf ? 0 : -1;
    for (int i = 0; i < n && torn >= 0; i++) {
        if (dv_shared_read(s, 0, buf, PIECE, NULL) < 0)
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

/* Two writers here (each its own relay and connection), one at home. */
static void test_atomic(const struct home *hm)
{
    int *stop = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int ready[2];
    CHECK(stop != MAP_FAILED && pipe(ready) == 0);
    *stop = 0;
    pid_t pids[2];
    fflush(stdout);
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            alarm(60);
            dv_shared_t *w = dv_shared_attach(&hm->h[B_PIECE], NULL);
            _exit(!w || write_until_stop(w, (char)('a' + i), stop, ready[1]));
        }
    }
    char c;
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(read(ready[0], &c, 1), 1);
    home_says('w', &c, 1);
    dv_shared_t *s = dv_shared_attach(&hm->h[B_PIECE], NULL);
    CHECK(s != NULL);
    CHECK_EQ_INT(torn_reads(s, 100), 0);
    __atomic_store_n(stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(tq_wait(pids[i]), 0);
    home_says('s', &c, 1);
    CHECK_EQ_INT(c, 0);
    dv_shared_destroy(&s);
    munmap(stop, sizeof(int));
    close(ready[0]);
    close(ready[1]);
}

static void test_handles(const struct home *hm)
{
    dv_error_t err = {0};
    CHECK(dv_shared_attach(&hm->h[B_GONE], &err) == NULL);
    CHECK_EQ_INT(errno, ENOENT);
    printf("handles: stale: %s\n", err.text);
    dv_handle_t forged = hm->h[B_SMALL];
    forged.bytes[9] ^= 1;
    CHECK(dv_shared_attach(&forged, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
}

/* Segments of this test's job (both nodes) left in /dev/shm. */
static int leftovers(void)
{
    int n = tq_leftovers();
    char saved[64];
    snprintf(saved, sizeof(saved), "%s", tq_prefix);
    /* "drover.<job>." becomes "drover.<job>-n1." */
    snprintf(tq_prefix, sizeof(tq_prefix), "%.*s-n1.", (int)strlen(saved) - 1,
             saved);
    n += tq_leftovers();
    snprintf(tq_prefix, sizeof(tq_prefix), "%s", saved);
    return n;
}

int main(void)
{
    tq_setup("shrem");
    struct home hm;
    pid_t home = start_home(&hm);
    node_table(hm.port);
    test_bytes(&hm);
    test_big(&hm);
    test_atomic(&hm);
    test_handles(&hm);
    home_says('q', NULL, 0);
    CHECK_EQ_INT(tq_wait(home), 0);
    dv__node_reset();
    clean_dir();
    CHECK_EQ_INT(leftovers(), 0);
    return CHECK_DONE();
}
