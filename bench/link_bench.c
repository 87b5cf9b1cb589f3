/* The cost of the data plane link's crypto alone (src/lib/data_link.c):
 * the link's socket calls are replaced by memory pipes, so a frame sent
 * and read costs its keys, its tags and two copies, nothing of the
 * kernel. Usage: link_bench [SMALL_FRAMES [LARGE_FRAMES]]; prints the
 * time of one small frame and the bandwidth of 8 MiB ones. fd 0 is the
 * server's end of the pipes, fd 1 the client's. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "lib/data_link.h"
#include "lib/remote_wire.h"

#define BIG ((size_t)8 << 20)

struct mpipe {
    uint8_t *b;
    size_t w, r;
};

static struct mpipe s2c, c2s;
static dv__link_t server, client;
static const uint8_t token[DV_LINK_TOKEN] = "a benchmark's token, 32 bytes..";
static int handshaking = 1;

/* The client's answer is taken by the server at once, its proof queued
 * for the client (dv__link_connect reads it next). */
static int server_answers(void)
{
    uint8_t proof[DV_LINK_PROOF];
    if (dv__link_accept(&server, token, c2s.b, proof) < 0)
        return -1;
    c2s.w = c2s.r = 0;
    memcpy(s2c.b + s2c.w, proof, sizeof(proof));
    s2c.w += sizeof(proof);
    handshaking = 0;
    return 0;
}

int dv__data_send(int fd, struct iovec *iov, int n, int (*wait)(void *ctx),
                  void *ctx)
{
    (void)wait;
    (void)ctx;
    struct mpipe *p = fd == 0 ? &s2c : &c2s;
    for (int i = 0; i < n; i++) {
        memcpy(p->b + p->w, iov[i].iov_base, iov[i].iov_len);
        p->w += iov[i].iov_len;
    }
    return fd == 1 && handshaking ? server_answers() : 0;
}

int dv__data_read(int fd, void *q, size_t n)
{
    struct mpipe *p = fd == 0 ? &c2s : &s2c;
    if (p->r + n > p->w)
        abort(); /* the benchmark reads only what was sent */
    memcpy(q, p->b + p->r, n);
    p->r += n;
    if (p->r == p->w)
        p->r = p->w = 0;
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* n frames client -> server of a 32-byte header and bl body bytes;
 * seconds per frame. */
static double frames(int n, const uint8_t *b, uint8_t *into, size_t bl)
{
    uint8_t h[32] = "a header", hin[32];
    struct iovec v[2] = {{h, sizeof(h)}, {(void *)b, bl}};
    double t0 = now();
    for (int i = 0; i < n; i++)
        if (dv__link_send(&client, v, bl ? 2 : 1, NULL, NULL) < 0 ||
            dv__link_read_head(&server, hin, sizeof(hin)) < 0 ||
            (bl && dv__link_read(&server, into, bl) < 0) ||
            dv__link_read_end(&server) < 0) {
            fprintf(stderr, "drover: link_bench: a frame failed\n");
            exit(1);
        }
    return (now() - t0) / n;
}

int main(int argc, char **argv)
{
    int nsmall = argc > 1 ? atoi(argv[1]) : 500000;
    int nbig = argc > 2 ? atoi(argv[2]) : 100;
    uint8_t hello[DV_LINK_HELLO];
    s2c.b = malloc(BIG + 4096);
    c2s.b = malloc(BIG + 4096);
    uint8_t *body = calloc(1, BIG), *into = malloc(BIG);
    if (!s2c.b || !c2s.b || !body || !into || nsmall < 1 || nbig < 1 ||
        dv__link_hello(&server, 0, hello) < 0) {
        fprintf(stderr, "drover: link_bench: cannot start\n");
        return 1;
    }
    memcpy(s2c.b, hello, sizeof(hello));
    s2c.w = sizeof(hello);
    if (dv__link_connect(&client, 1, token, NULL) < 0) {
        fprintf(stderr, "drover: link_bench: handshake failed\n");
        return 1;
    }
    frames(1000, body, into, 64); /* warm */
    printf("frame 32 B + 64 B (send + read): %.0f ns\n",
           frames(nsmall, body, into, 64) * 1e9);
    printf("frame 32 B, no body (send + read): %.0f ns\n",
           frames(nsmall, body, into, 0) * 1e9);
    printf("frame 32 B + 8 MiB (send + read): %.2f GB/s\n",
           (double)BIG / frames(nbig, body, into, BIG) / 1e9);
    dv__link_free(&server);
    dv__link_free(&client);
    free(s2c.b);
    free(c2s.b);
    free(body);
    free(into);
    return 0;
}
