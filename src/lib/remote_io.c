/* Byte-exact reads and writes of the data plane's frames (remote.c and
 * remote_mux.c on the client side, src/multinode/mn_data.c on the home agent's
 * side), under and over the authenticated link (data_link.c). A small
 * frame goes out in one sendmsg where the socket takes it, so that a
 * small request or answer is one TCP segment, not a header and then its
 * payload. */
#define _GNU_SOURCE
#include "lib/remote_wire.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/data_link.h"

int dv__data_read(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0)
            errno = ECONNRESET; /* the peer hung up */
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int dv__data_send(int fd, struct iovec *iov, int n, int (*wait)(void *ctx),
                  void *ctx)
{
    int flags = MSG_NOSIGNAL | (wait ? MSG_DONTWAIT : 0);
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = sendmsg(fd, &m, flags);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && wait && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait(ctx) < 0)
                return -1;
            continue;
        }
        if (k < 0)
            return -1;
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

int dv__data_send_request(dv__link_t *l, struct dv__data_req *q, const void *in,
                          int (*wait)(void *ctx), void *ctx)
{
    struct iovec v[2] = {{q, sizeof(*q)}, {(void *)in, (size_t)q->len}};
    return dv__link_send(l, v, 2, wait, ctx);
}

int dv__data_send_answer(dv__link_t *l, uint32_t relay, int rc, int err,
                         int32_t value, const char *why, const void *data,
                         size_t len)
{
    size_t tl = rc < 0 ? strnlen(why, DV_DATA_TEXT_MAX) : 0;
    struct dv__data_rep r = {
        DV_DATA_MAGIC, rc, err, value, (uint32_t)tl, relay, rc == 0 ? len : 0};
    struct iovec v[3] = {
        {&r, sizeof(r)}, {(void *)why, tl}, {(void *)data, (size_t)r.len}};
    return dv__link_send(l, v, 3, NULL, NULL);
}
