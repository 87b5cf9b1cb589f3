/* libFuzzer target over the data port's decoders (src/multinode/mn_data.c on
 * the link of src/lib/data_link.c): whatever bytes arrive on an agent's
 * data port, before or after the handshake, the server must answer or
 * hang up without reading out of bounds, leaking, or touching an object
 * the bytes do not name. The server runs on a thread over a socket pair;
 * this thread is the peer. The input's first byte picks how it comes:
 *   bit 0 clear: the rest as raw bytes, straight after the server's
 *                challenge (a stranger: the answer's check);
 *   bit 0 set:   an honest handshake with the job's token, then the rest
 *                cut into frames, each sent with valid tags (a header the
 *                size of a request, then as many body bytes as the header
 *                asks for and the input still has), so that the request
 *                decoder sees them; bit 1 then flips one byte of the
 *                stream (the tags' check).
 * Handles in the frames name no object of this process, so every
 * operation must fail cleanly (nothing blocks). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "multinode/mn.h"
#include "lib/data_link.h"
#include "lib/remote_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t token[DV_DATA_TOKEN] = "the job's token, 32 bytes long.";

struct server {
    mn_data_t *d;
    int fd;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    mn_data_serve_conn(s->d, s->fd);
    shutdown(s->fd, SHUT_RDWR);
    return NULL;
}

/* Frames of the input, through a second socket pair so that a byte of the
 * stream can be flipped on its way to fd. */
static void send_frames(dv__link_t *l, int fd, const uint8_t *p, size_t n,
                        int flip)
{
    int tap[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tap) < 0)
        abort();
    int big = 1 << 20;
    setsockopt(tap[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    l->fd = tap[0];
    size_t sent = 0;
    while (n > 0) {
        struct dv__data_req q = {0};
        size_t h = n < sizeof(q) ? n : sizeof(q);
        memcpy(&q, p, h);
        p += h;
        n -= h;
        size_t b = q.len < n ? (size_t)q.len : n;
        struct iovec v[2] = {{&q, sizeof(q)}, {(void *)p, b}};
        if (dv__link_send(l, v, 2, NULL, NULL) < 0)
            break;
        p += b;
        n -= b;
        sent += sizeof(q) + b + 2 * DV_LINK_TAG;
    }
    shutdown(tap[0], SHUT_WR);
    uint8_t buf[4096];
    ssize_t k;
    size_t at = 0, where = flip ? (size_t)flip * 7919 % (sent ? sent : 1) : 0;
    while ((k = read(tap[1], buf, sizeof(buf))) > 0) {
        if (flip && where >= at && where < at + (size_t)k)
            buf[where - at] ^= 0x20;
        at += (size_t)k;
        if (write(fd, buf, (size_t)k) != k)
            break;
    }
    close(tap[0]);
    close(tap[1]);
    l->fd = fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0; /* stays within the socket pair's buffers */
    static mn_data_t *d;
    if (!d && !(d = mn_data_new(token, NULL, NULL, NULL)))
        abort();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    struct server s = {d, sv[1]};
    pthread_t th;
    if (pthread_create(&th, NULL, serve, &s) != 0)
        abort();
    dv__link_t l;
    if (!(data[0] & 1)) {
        (void)!write(sv[0], data + 1, size - 1);
    } else if (dv__link_connect(&l, sv[0], token, NULL) == 0) {
        send_frames(&l, sv[0], data + 1, size - 1, (data[0] & 2) ? data[0] : 0);
        dv__link_free(&l);
    } else {
        dv__link_free(&l);
    }
    shutdown(sv[0], SHUT_WR);
    char sink[4096];
    while (read(sv[0], sink, sizeof(sink)) > 0)
        ;
    pthread_join(th, NULL);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
