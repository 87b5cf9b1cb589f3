/* The runtime's message codec: building and checking message bodies, and
 * moving whole messages (with an optional file descriptor) over a stream
 * socket. Every decoder bound-checks; a malformed message is EPROTO. */
#define _GNU_SOURCE
#include "lib/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

void dv__msgw_init(dv__msgw_t *w)
{
    memset(w, 0, sizeof(*w));
}

void dv__msgw_free(dv__msgw_t *w)
{
    free(w->buf);
    dv__msgw_init(w);
}

static void put(dv__msgw_t *w, const void *p, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) {
            w->failed = 1;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void dv__msgw_u32(dv__msgw_t *w, uint32_t v)
{
    uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24};
    put(w, b, 4);
}

void dv__msgw_i32(dv__msgw_t *w, int32_t v)
{
    dv__msgw_u32(w, (uint32_t)v);
}

void dv__msgw_u64(dv__msgw_t *w, uint64_t v)
{
    dv__msgw_u32(w, (uint32_t)v);
    dv__msgw_u32(w, (uint32_t)(v >> 32));
}

void dv__msgw_bytes(dv__msgw_t *w, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        w->failed = 1;
        return;
    }
    dv__msgw_u32(w, (uint32_t)n);
    put(w, p, n);
}

void dv__msgw_str(dv__msgw_t *w, const char *s)
{
    dv__msgw_bytes(w, s, strlen(s));
}

void dv__msgr_init(dv__msgr_t *r, const void *p, size_t n)
{
    r->p = p;
    r->left = p ? n : 0;
    r->bad = 0;
}

static const uint8_t *take(dv__msgr_t *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint32_t dv__msgr_u32(dv__msgr_t *r)
{
    const uint8_t *b = take(r, 4);
    if (!b)
        return 0;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

int32_t dv__msgr_i32(dv__msgr_t *r)
{
    return (int32_t)dv__msgr_u32(r);
}

uint64_t dv__msgr_u64(dv__msgr_t *r)
{
    uint64_t lo = dv__msgr_u32(r);
    uint64_t hi = dv__msgr_u32(r);
    return lo | hi << 32;
}

size_t dv__msgr_bytes(dv__msgr_t *r, const void **p)
{
    uint32_t n = dv__msgr_u32(r);
    const uint8_t *b = take(r, n);
    *p = b;
    return b ? n : 0;
}

void dv__msgr_str(dv__msgr_t *r, char *buf, size_t cap)
{
    const void *p;
    size_t n = dv__msgr_bytes(r, &p);
    if (r->bad || n >= cap || memchr(p, 0, n)) {
        r->bad = 1;
        if (cap)
            buf[0] = 0;
        return;
    }
    memcpy(buf, p, n);
    buf[n] = 0;
}

size_t dv__msgr_tail(dv__msgr_t *r, const void **p)
{
    size_t n = r->bad ? 0 : r->left;
    *p = r->bad ? NULL : r->p;
    r->p += n;
    r->left -= n;
    return n;
}

void dv__msg_hdr_pack(uint8_t *out, uint16_t type, size_t len)
{
    uint32_t v[3] = {DV_MSG_MAGIC,
                     (uint32_t)type | (uint32_t)DV_MSG_VERSION << 16,
                     (uint32_t)len};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            out[i * 4 + k] = (uint8_t)(v[i] >> (8 * k));
}

int dv__msg_hdr_parse(const uint8_t *in, uint16_t *type, size_t *len)
{
    dv__msgr_t r;
    dv__msgr_init(&r, in, DV_MSG_HDR);
    uint32_t magic = dv__msgr_u32(&r);
    uint32_t tv = dv__msgr_u32(&r);
    uint32_t n = dv__msgr_u32(&r);
    uint16_t t = (uint16_t)tv;
    if (magic != DV_MSG_MAGIC || tv >> 16 != DV_MSG_VERSION || t == 0 ||
        t > DV_MSG_TYPE_MAX) {
        errno = EPROTO;
        return -1;
    }
    if (n > DV_MSG_BODY_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    *type = t;
    *len = n;
    return 0;
}

static int send_all(int sock, struct msghdr *mh)
{
    while (mh->msg_iovlen) {
        ssize_t n = sendmsg(sock, mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        mh->msg_control = NULL; /* the fd went with the first byte */
        mh->msg_controllen = 0;
        while (mh->msg_iovlen && (size_t)n >= mh->msg_iov->iov_len) {
            n -= (ssize_t)mh->msg_iov->iov_len;
            mh->msg_iov++;
            mh->msg_iovlen--;
        }
        if (mh->msg_iovlen) {
            mh->msg_iov->iov_base = (char *)mh->msg_iov->iov_base + n;
            mh->msg_iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

int dv__msg_send(int sock, uint16_t type, const dv__msgw_t *w, const void *tail,
                 size_t tail_len, int pass_fd)
{
    size_t blen = w ? w->len : 0;
    if (w && w->failed) {
        errno = ENOMEM;
        return -1;
    }
    if (blen + tail_len > DV_MSG_BODY_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    uint8_t hdr[DV_MSG_HDR];
    dv__msg_hdr_pack(hdr, type, blen + tail_len);
    struct iovec iov[3] = {{hdr, sizeof(hdr)},
                           {w ? w->buf : NULL, blen},
                           {(void *)tail, tail_len}};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 3};
    if (pass_fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.b;
        mh.msg_controllen = sizeof(ctl.b);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    return send_all(sock, &mh);
}

static int recv_all(int sock, void *p, size_t n)
{
    while (n) {
        ssize_t r = recv(sock, p, n, MSG_WAITALL);
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p = (char *)p + r;
        n -= (size_t)r;
    }
    return 0;
}

static int recv_hdr(int sock, uint8_t *hdr, int *fd_out)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = {hdr, DV_MSG_HDR};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.b,
                        .msg_controllen = sizeof(ctl.b)};
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        if (n == 0)
            errno = ECONNRESET;
        return -1;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof(int));
            if (*fd_out >= 0)
                close(fd);
            else
                *fd_out = fd;
        }
    }
    return recv_all(sock, hdr + n, DV_MSG_HDR - (size_t)n);
}

int dv__msg_recv(int sock, uint16_t *type, void **body, size_t *len,
                 int *fd_out)
{
    uint8_t hdr[DV_MSG_HDR];
    int fd = -1;
    *body = NULL;
    *len = 0;
    if (recv_hdr(sock, hdr, &fd) < 0 || dv__msg_hdr_parse(hdr, type, len) < 0)
        goto fail;
    if (*len) {
        *body = malloc(*len);
        if (!*body || recv_all(sock, *body, *len) < 0)
            goto fail;
    }
    if (fd_out)
        *fd_out = fd;
    else if (fd >= 0)
        close(fd);
    return 0;
fail:;
    int e = errno;
    free(*body);
    *body = NULL;
    *len = 0;
    if (fd >= 0)
        close(fd);
    if (fd_out)
        *fd_out = -1;
    errno = e;
    return -1;
}
