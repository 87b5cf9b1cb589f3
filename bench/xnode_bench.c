/* Cross-node benchmark tool (bench/xnode.sh runs it inside two or more
 * emulated nodes): plain TCP ping-pong and stream as the baseline, and the
 * same over drover's CURVE transport (DEALER/ROUTER, wire messages).
 *
 *   xnode_bench keygen                       print a job key set (for the
 *                                            DROVER_KEYS environment)
 *   xnode_bench serve tcp|curve ADDR PORT    answer one client, then exit
 *   (zmq instead of curve: the same over ZeroMQ without CURVE)
 *   xnode_bench rtt tcp|curve ADDR PORT N    print us per 64-byte round trip
 *   xnode_bench bw tcp|curve ADDR PORT MIB N print GB/s for N messages of
 *                                            MIB MiB, one way
 *   xnode_bench head tcp|curve ADDR PORT N   wait for N agents' hellos,
 *                                            welcome each, print the
 *                                            CLOCK_REALTIME when all are in
 *   xnode_bench agent tcp|curve ADDR PORT    say hello, wait for welcome
 * The CURVE side reads its keys from DROVER_KEYS, never from argv. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/transport.h"

#define RTT_BYTES 64
#define WARMUP_RTT 500

static void die(const char *what)
{
    fprintf(stderr, "drover: xnode_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- plain TCP ---- */

static struct sockaddr_in tcp_addr(const char *addr, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
        errno = EINVAL;
        die(addr);
    }
    return a;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int tcp_listen(const char *addr, int port)
{
    struct sockaddr_in a = tcp_addr(addr, port);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0)
        die("tcp listen");
    return fd;
}

/* Connect, retrying for up to 10 s while the server starts. */
static int tcp_connect(const char *addr, int port)
{
    struct sockaddr_in a = tcp_addr(addr, port);
    for (int i = 0; i < 1000; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            nodelay(fd);
            return fd;
        }
        close(fd);
        usleep(10000);
    }
    die("tcp connect");
    return -1;
}

static void full_io(int fd, void *buf, size_t n, int writing)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t k = writing ? write(fd, p, n) : read(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = ECONNRESET;
            die(writing ? "write" : "read");
        }
        p += k;
        n -= (size_t)k;
    }
}

/* Request: 'R' + u64 count (echo that many 64-byte messages) or 'B' + u64
 * total bytes (read them all, answer one byte). */
static void tcp_serve(const char *addr, int port)
{
    int lfd = tcp_listen(addr, port);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        die("accept");
    nodelay(fd);
    uint8_t req[9];
    full_io(fd, req, sizeof(req), 0);
    uint64_t n;
    memcpy(&n, req + 1, 8);
    if (req[0] == 'R') {
        uint8_t m[RTT_BYTES];
        for (uint64_t i = 0; i < n; i++) {
            full_io(fd, m, sizeof(m), 0);
            full_io(fd, m, sizeof(m), 1);
        }
    } else {
        size_t chunk = 8u << 20;
        uint8_t *buf = malloc(chunk);
        while (n) {
            ssize_t k = read(fd, buf, n < chunk ? n : chunk);
            if (k <= 0)
                die("read");
            n -= (uint64_t)k;
        }
        full_io(fd, "k", 1, 1);
        free(buf);
    }
    close(fd);
    close(lfd);
}

static double tcp_rtt(const char *addr, int port, long n)
{
    int fd = tcp_connect(addr, port);
    uint8_t req[9] = {'R'}, m[RTT_BYTES] = {0};
    uint64_t total = (uint64_t)n + WARMUP_RTT;
    memcpy(req + 1, &total, 8);
    full_io(fd, req, sizeof(req), 1);
    double t0 = 0;
    for (uint64_t i = 0; i < total; i++) {
        if (i == WARMUP_RTT)
            t0 = now_s(CLOCK_MONOTONIC);
        full_io(fd, m, sizeof(m), 1);
        full_io(fd, m, sizeof(m), 0);
    }
    double us = (now_s(CLOCK_MONOTONIC) - t0) * 1e6 / (double)n;
    close(fd);
    return us;
}

static double tcp_bw(const char *addr, int port, size_t size, long n)
{
    int fd = tcp_connect(addr, port);
    uint8_t req[9] = {'B'}, ack;
    uint64_t total = (uint64_t)size * (uint64_t)n;
    memcpy(req + 1, &total, 8);
    uint8_t *buf = malloc(size);
    memset(buf, 7, size);
    full_io(fd, req, sizeof(req), 1);
    double t0 = now_s(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++)
        full_io(fd, buf, size, 1);
    full_io(fd, &ack, 1, 0);
    double gbs = (double)total / (now_s(CLOCK_MONOTONIC) - t0) / 1e9;
    free(buf);
    close(fd);
    return gbs;
}

/* ---- CURVE transport ---- */

static dv_transport_t *curve_transport(void)
{
    dv_job_keys_t keys;
    dv_error_t err = {{0}};
    if (dv__keys_from_env(&keys, &err) < 0) {
        fprintf(stderr, "drover: xnode_bench: %s\n", err.text);
        exit(1);
    }
    dv_transport_t *tp = dv__transport_create(&keys, NULL, NULL, &err);
    dv__keys_wipe(&keys);
    if (!tp) {
        fprintf(stderr, "drover: xnode_bench: %s\n", err.text);
        exit(1);
    }
    return tp;
}

/* A message of type with one field of n bytes (from data, may be NULL). */
static void curve_send(void *s, const uint8_t *peer, size_t plen, uint16_t type,
                       uint64_t id, const void *data, size_t n)
{
    dv_wire_buf_t b = {0};
    dv_error_t err = {{0}};
    if (dv__wire_begin(&b, type, id, n + 16, &err) < 0)
        die("encode");
    dv__wire_put(&b, 1, data, n);
    if (dv__wire_end(&b, &err) < 0 ||
        dv__transport_send(s, peer, plen, &b, &err) < 0) {
        fprintf(stderr, "drover: xnode_bench: %s\n", err.text);
        exit(1);
    }
}

static void curve_recv(void *s, dv_transport_msg_t *m)
{
    dv_error_t err = {{0}};
    if (dv__transport_recv(s, m, 30000, &err) < 0) {
        fprintf(stderr, "drover: xnode_bench: %s\n", err.text);
        exit(1);
    }
}

/* "zmq" runs the CURVE code paths on sockets of the same context without
 * any security, to tell ZeroMQ's cost from CURVE's. */
static int plain_zmq;

static void *plain_socket(dv_transport_t *tp, int type, const char *ep)
{
    void *s = zmq_socket(dv__transport_context(tp), type);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    if ((type == ZMQ_ROUTER ? zmq_bind(s, ep) : zmq_connect(s, ep)) != 0)
        die(ep);
    return s;
}

/* Close the socket (transport-made or plain) and the transport. */
static void finish(dv_transport_t *tp, void *s)
{
    if (plain_zmq)
        zmq_close(s);
    else
        dv__transport_close(tp, &s);
    dv__transport_destroy(&tp);
}

static void *curve_connect(dv_transport_t *tp, const char *addr, int port)
{
    char ep[128];
    dv_error_t err = {{0}};
    snprintf(ep, sizeof(ep), "tcp://%s:%d", addr, port);
    if (plain_zmq)
        return plain_socket(tp, ZMQ_DEALER, ep);
    void *s = dv__transport_connect(tp, ep, &err);
    if (!s) {
        fprintf(stderr, "drover: xnode_bench: %s\n", err.text);
        exit(1);
    }
    return s;
}

static void *curve_listen(dv_transport_t *tp, const char *addr, int port)
{
    char ep[128];
    dv_error_t err = {{0}};
    snprintf(ep, sizeof(ep), "tcp://%s:%d", addr, port);
    if (plain_zmq)
        return plain_socket(tp, ZMQ_ROUTER, ep);
    void *s = dv__transport_listen(tp, ep, NULL, 0, &err);
    if (!s) {
        fprintf(stderr, "drover: xnode_bench: %s\n", err.text);
        exit(1);
    }
    return s;
}

/* PING with id 0 ends the session; a PING field of RTT_BYTES is echoed as
 * a PONG; a larger one is counted, and the count acknowledged when a
 * PING with id 1 arrives. */
static void curve_serve(const char *addr, int port)
{
    dv_transport_t *tp = curve_transport();
    void *s = curve_listen(tp, addr, port);
    for (;;) {
        dv_transport_msg_t m;
        curve_recv(s, &m);
        const dv_wire_field_t *f = dv__wire_find(&m.view, 1);
        uint64_t id = m.view.id;
        if (id == 0) {
            dv__transport_msg_close(&m);
            break;
        }
        if (f && (f->len <= RTT_BYTES || id == 1))
            curve_send(s, m.peer, m.peer_len, DV_WIRE_PONG, id, f->data,
                       f->len);
        dv__transport_msg_close(&m);
    }
    finish(tp, s);
}

static double curve_rtt(const char *addr, int port, long n)
{
    dv_transport_t *tp = curve_transport();
    void *s = curve_connect(tp, addr, port);
    uint8_t payload[RTT_BYTES - DV_WIRE_HEADER_SIZE - 6] = {0};
    double t0 = 0;
    for (long i = 0; i < n + WARMUP_RTT; i++) {
        if (i == WARMUP_RTT)
            t0 = now_s(CLOCK_MONOTONIC);
        curve_send(s, NULL, 0, DV_WIRE_PING, 2, payload, sizeof(payload));
        dv_transport_msg_t m;
        curve_recv(s, &m);
        dv__transport_msg_close(&m);
    }
    double us = (now_s(CLOCK_MONOTONIC) - t0) * 1e6 / (double)n;
    curve_send(s, NULL, 0, DV_WIRE_PING, 0, NULL, 0);
    usleep(100000); /* let the stop message leave (linger is 0) */
    finish(tp, s);
    return us;
}

static double curve_bw(const char *addr, int port, size_t size, long n)
{
    dv_transport_t *tp = curve_transport();
    void *s = curve_connect(tp, addr, port);
    int hwm = 4; /* bounded in flight, as a queue's maxsize would be */
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    uint8_t *buf = malloc(size);
    memset(buf, 7, size);
    dv_transport_msg_t m;
    curve_send(s, NULL, 0, DV_WIRE_PING, 1, "x", 1);
    curve_recv(s, &m); /* connected and authenticated */
    dv__transport_msg_close(&m);
    double t0 = now_s(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++)
        curve_send(s, NULL, 0, DV_WIRE_PING, 3, buf, size);
    curve_send(s, NULL, 0, DV_WIRE_PING, 1, "x", 1);
    curve_recv(s, &m);
    dv__transport_msg_close(&m);
    double gbs = (double)size * (double)n / (now_s(CLOCK_MONOTONIC) - t0) / 1e9;
    curve_send(s, NULL, 0, DV_WIRE_PING, 0, NULL, 0);
    usleep(100000);
    free(buf);
    finish(tp, s);
    return gbs;
}

/* ---- wire-up: N agents say hello to a head ---- */

static void head(const char *kind, const char *addr, int port, long n)
{
    if (strcmp(kind, "tcp") == 0) {
        int lfd = tcp_listen(addr, port);
        printf("ready\n");
        fflush(stdout);
        for (long i = 0; i < n; i++) {
            int fd = accept(lfd, NULL, NULL);
            char hello[64];
            if (fd < 0 || read(fd, hello, sizeof(hello)) <= 0)
                die("hello");
            full_io(fd, "w", 1, 1);
            close(fd);
        }
        close(lfd);
    } else {
        dv_transport_t *tp = curve_transport();
        void *s = curve_listen(tp, addr, port);
        printf("ready\n");
        fflush(stdout);
        for (long i = 0; i < n; i++) {
            dv_transport_msg_t m;
            curve_recv(s, &m);
            curve_send(s, m.peer, m.peer_len, DV_WIRE_WELCOME, m.view.id, NULL,
                       0);
            dv__transport_msg_close(&m);
        }
        usleep(100000);
        dv__transport_destroy(&tp);
    }
    printf("%.6f\n", now_s(CLOCK_REALTIME));
}

static void agent(const char *kind, const char *addr, int port)
{
    char host[64] = "?";
    gethostname(host, sizeof(host));
    if (strcmp(kind, "tcp") == 0) {
        int fd = tcp_connect(addr, port);
        char w;
        full_io(fd, host, strlen(host), 1);
        full_io(fd, &w, 1, 0);
        close(fd);
        return;
    }
    dv_transport_t *tp = curve_transport();
    void *s = curve_connect(tp, addr, port);
    dv_transport_msg_t m;
    curve_send(s, NULL, 0, DV_WIRE_HELLO, 1, host, strlen(host));
    curve_recv(s, &m);
    dv__transport_msg_close(&m);
    dv__transport_destroy(&tp);
}

static void keygen(void)
{
    dv_job_keys_t k;
    char text[DV_KEYS_TEXT];
    if (dv__keys_generate(&k, NULL) < 0)
        die("keygen");
    dv__keys_format(&k, text);
    fputs(text, stdout);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "keygen") == 0) {
        keygen();
        return 0;
    }
    if (argc >= 3 && strcmp(argv[2], "zmq") == 0) {
        plain_zmq = 1;
        argv[2] = "curve";
    }
    if (argc < 5 || (strcmp(argv[2], "tcp") && strcmp(argv[2], "curve"))) {
        fprintf(stderr, "drover: xnode_bench: usage: xnode_bench keygen | "
                        "serve|rtt|bw|head|agent tcp|curve ADDR PORT ...\n");
        return 2;
    }
    const char *cmd = argv[1], *addr = argv[3];
    int port = atoi(argv[4]), tcp = strcmp(argv[2], "tcp") == 0;
    long n = argc > 5 ? atol(argv[argc - 1]) : 0;
    if (strcmp(cmd, "serve") == 0)
        tcp ? tcp_serve(addr, port) : curve_serve(addr, port);
    else if (strcmp(cmd, "rtt") == 0 && n > 0)
        printf("%.2f\n",
               tcp ? tcp_rtt(addr, port, n) : curve_rtt(addr, port, n));
    else if (strcmp(cmd, "bw") == 0 && argc == 7 && n > 0) {
        size_t size = (size_t)atol(argv[5]) << 20;
        printf("%.3f\n", tcp ? tcp_bw(addr, port, size, n)
                             : curve_bw(addr, port, size, n));
    } else if (strcmp(cmd, "head") == 0 && n > 0)
        head(argv[2], addr, port, n);
    else if (strcmp(cmd, "agent") == 0)
        agent(argv[2], addr, port);
    else {
        fprintf(stderr, "drover: xnode_bench: bad arguments for %s\n", cmd);
        return 2;
    }
    return 0;
}
