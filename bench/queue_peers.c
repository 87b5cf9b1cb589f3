/* Queues against the kernel's and ZeroMQ's ways of moving bytes between
 * two processes on one host (bench/queue_peers.sh interleaves the sides).
 * One side and one measurement per run; prints one number.
 *
 *   queue_peers bw SIDE BYTES COUNT  -> GB/s (10^9 bytes/s), one way: a
 *       forked producer sends COUNT messages of BYTES; the consumer reads
 *       every byte of each (a sum of its 8-byte words) before the next.
 *   queue_peers rtt SIDE BYTES COUNT -> microseconds per round trip with
 *       a forked echo process.
 *
 * SIDE: drover    a queue (maxsize 2); bw takes each message lent in
 *                 place (dv_queue_get_lend), rtt with dv_queue_get_into
 *       socketpair AF_UNIX stream, read into one reused buffer
 *       pipe      pipes of 1 MiB (F_SETPIPE_SZ), read likewise
 *       zmq       ZeroMQ PUSH/PULL (bw) or PAIR (rtt) over ipc://,
 *                 zmq_msg_recv (no copy past the kernel's) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "drover/drover.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "drover: queue_peers: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* What reading a message in full costs: every word loaded. */
static uint64_t sum(const void *p, size_t n)
{
    const uint64_t *w = p;
    uint64_t s = 0;
    for (size_t i = 0; i < n / 8; i++)
        s += w[i];
    return s;
}

/* All n bytes of p out to fd (out) or in from it. Returns 0, or -1. */
static int move_all(int fd, void *p, size_t n, int out)
{
    for (char *c = p; n;) {
        ssize_t r = out ? write(fd, c, n) : read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* A pair of connected descriptors of the side: fd[0] ours to read, fd[1]
 * the child's to write (a socketpair also the other way). */
static void stream_pair(const char *side, int fd[2])
{
    if (!strcmp(side, "socketpair")) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd) < 0)
            die("socketpair");
        return;
    }
    int p[2];
    if (pipe(p) < 0)
        die("pipe");
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    fd[0] = p[0]; /* we read, the child writes */
    fd[1] = p[1];
}

/* ---- bandwidth ---- */

static double bw_stream(const char *side, size_t bytes, long count)
{
    int fd[2];
    stream_pair(side, fd);
    char *buf = malloc(bytes);
    if (!buf)
        die("malloc");
    memset(buf, 1, bytes);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        for (long i = 0; i < count; i++)
            if (move_all(fd[1], buf, bytes, 1) < 0)
                _exit(1);
        _exit(0);
    }
    close(fd[1]);
    volatile uint64_t s = 0;
    if (move_all(fd[0], buf, bytes, 0) < 0) /* the clock starts at the first */
        die("read");
    double t0 = now();
    for (long i = 1; i < count; i++) {
        if (move_all(fd[0], buf, bytes, 0) < 0)
            die("read");
        s += sum(buf, bytes);
    }
    double t = now() - t0;
    waitpid(pid, NULL, 0);
    close(fd[0]);
    free(buf);
    return (double)bytes * (double)(count - 1) / t / 1e9;
}

static double bw_drover(size_t bytes, long count)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(2, &err);
    if (!q)
        die(err.text);
    pid_t pid = fork();
    if (pid == 0) {
        char *msg = malloc(bytes);
        if (!msg)
            _exit(1);
        memset(msg, 1, bytes);
        for (long i = 0; i < count; i++)
            if (dv_queue_put(q, msg, bytes, 60, NULL) < 0)
                _exit(1);
        _exit(0);
    }
    volatile uint64_t s = 0;
    dv_queue_view_t v;
    double t0 = 0;
    for (long i = 0; i < count; i++) {
        if (dv_queue_get_lend(q, &v, 60, &err) < 0)
            die(err.text);
        if (i)
            s += sum(v.data, v.len);
        else
            t0 = now();
        dv_queue_lend_release(q, &v, NULL);
    }
    double t = now() - t0;
    waitpid(pid, NULL, 0);
    dv_queue_destroy(&q);
    return (double)bytes * (double)(count - 1) / t / 1e9;
}

static void ipc_endpoint(char *ep, size_t cap)
{
    snprintf(ep, cap, "ipc:///tmp/queue_peers.%ld", (long)getpid());
}

static double bw_zmq(size_t bytes, long count)
{
    char ep[96];
    ipc_endpoint(ep, sizeof(ep));
    pid_t pid = fork();
    if (pid == 0) {
        void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PUSH);
        char *msg = malloc(bytes);
        int hwm = 2;
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        if (!msg || zmq_connect(s, ep) < 0)
            _exit(1);
        memset(msg, 1, bytes);
        for (long i = 0; i < count; i++)
            if (zmq_send(s, msg, bytes, 0) < 0)
                _exit(1);
        zmq_close(s);
        zmq_ctx_term(ctx);
        _exit(0);
    }
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PULL);
    int hwm = 2;
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (zmq_bind(s, ep) < 0)
        die("zmq_bind");
    volatile uint64_t sm = 0;
    double t0 = 0;
    for (long i = 0; i < count; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0)
            die("zmq_msg_recv");
        if (i)
            sm += sum(zmq_msg_data(&m), zmq_msg_size(&m));
        else
            t0 = now();
        zmq_msg_close(&m);
    }
    double t = now() - t0;
    waitpid(pid, NULL, 0);
    zmq_close(s);
    zmq_ctx_term(ctx);
    unlink(ep + 6);
    return (double)bytes * (double)(count - 1) / t / 1e9;
}

/* ---- round trip ---- */

static double rtt_stream(const char *side, size_t bytes, long count)
{
    int to[2], back[2], sock = !strcmp(side, "socketpair");
    if (sock)
        stream_pair(side, to); /* one socket both ways */
    else if (pipe(to) < 0 || pipe(back) < 0)
        die("pipe");
    char *buf = calloc(1, bytes);
    if (!buf)
        die("calloc");
    /* pipes: we write to[1] and read back[0]; the child the others */
    int my_w = sock ? to[0] : to[1], my_r = sock ? to[0] : back[0];
    int ch_r = sock ? to[1] : to[0], ch_w = sock ? to[1] : back[1];
    pid_t pid = fork();
    if (pid == 0) {
        while (move_all(ch_r, buf, bytes, 0) == 0)
            if (move_all(ch_w, buf, bytes, 1) < 0)
                break;
        _exit(0);
    }
    double t0 = now();
    for (long i = 0; i < count; i++)
        if (move_all(my_w, buf, bytes, 1) < 0 ||
            move_all(my_r, buf, bytes, 0) < 0)
            die("round trip");
    double t = now() - t0;
    close(my_w);
    if (!sock)
        close(ch_r), close(ch_w);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    free(buf);
    return t * 1e6 / (double)count;
}

static double rtt_drover(size_t bytes, long count)
{
    dv_error_t err;
    dv_queue_t *a = dv_queue_create(0, &err), *b = dv_queue_create(0, &err);
    char *buf = calloc(1, bytes ? bytes : 1);
    if (!a || !b || !buf)
        die("create");
    size_t n;
    pid_t pid = fork();
    if (pid == 0) {
        while (dv_queue_get_into(a, buf, bytes, &n, 60, NULL) == 0)
            dv_queue_put(b, buf, n, 60, NULL);
        _exit(0);
    }
    double t0 = now();
    for (long i = 0; i < count; i++)
        if (dv_queue_put(a, buf, bytes, 60, &err) < 0 ||
            dv_queue_get_into(b, buf, bytes, &n, 60, &err) < 0)
            die(err.text);
    double t = now() - t0;
    dv_queue_close(a);
    waitpid(pid, NULL, 0);
    dv_queue_destroy(&a);
    dv_queue_destroy(&b);
    free(buf);
    return t * 1e6 / (double)count;
}

static double rtt_zmq(size_t bytes, long count)
{
    char ep[96];
    ipc_endpoint(ep, sizeof(ep));
    char *buf = calloc(1, bytes ? bytes : 1);
    if (!buf)
        die("calloc");
    pid_t pid = fork();
    if (pid == 0) {
        void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
        if (zmq_connect(s, ep) < 0)
            _exit(1);
        for (;;) {
            int r = zmq_recv(s, buf, bytes, 0);
            if (r <= 0 || zmq_send(s, buf, (size_t)r, 0) < 0)
                break;
        }
        _exit(0);
    }
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
    if (zmq_bind(s, ep) < 0)
        die("zmq_bind");
    double t0 = now();
    for (long i = 0; i < count; i++)
        if (zmq_send(s, buf, bytes, 0) < 0 || zmq_recv(s, buf, bytes, 0) < 0)
            die("zmq round trip");
    double t = now() - t0;
    zmq_send(s, "", 0, 0); /* the echo ends */
    waitpid(pid, NULL, 0);
    zmq_close(s);
    zmq_ctx_term(ctx);
    unlink(ep + 6);
    free(buf);
    return t * 1e6 / (double)count;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: queue_peers bw|rtt drover|socketpair|pipe|zmq "
                        "BYTES COUNT\n");
        return 2;
    }
    const char *mode = argv[1], *side = argv[2];
    size_t bytes = strtoull(argv[3], NULL, 10);
    long count = strtol(argv[4], NULL, 10);
    int bw = !strcmp(mode, "bw"),
        known = !strcmp(side, "drover") || !strcmp(side, "socketpair") ||
                !strcmp(side, "pipe") || !strcmp(side, "zmq");
    if ((!bw && strcmp(mode, "rtt")) || !known || bytes < 1 || count < 2) {
        fprintf(stderr, "drover: queue_peers: bad arguments\n");
        return 2;
    }
    double r;
    if (!strcmp(side, "drover"))
        r = bw ? bw_drover(bytes, count) : rtt_drover(bytes, count);
    else if (!strcmp(side, "zmq"))
        r = bw ? bw_zmq(bytes, count) : rtt_zmq(bytes, count);
    else
        r = bw ? bw_stream(side, bytes, count) : rtt_stream(side, bytes, count);
    printf("%.3f\n", r);
    return 0;
}
