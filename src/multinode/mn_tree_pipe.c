/* The head's broadcasts on a child agent's stdin (see mn_tree.h): frames
 * of a 4-byte little-endian length and a wire message, written by the
 * parent (mn_tree_kids.c), read here by the child. */
#define _GNU_SOURCE
#include "multinode/mn_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint8_t *mn_tree_frame(const void *msg, size_t len, size_t *out_len)
{
    if (len > MN_TREE_FRAME_MAX)
        return NULL;
    uint8_t *f = malloc(len + 4);
    if (!f)
        return NULL;
    for (int i = 0; i < 4; i++)
        f[i] = (uint8_t)(len >> (8 * i));
    memcpy(f + 4, msg, len);
    *out_len = len + 4;
    return f;
}

int mn_tree_in_init(mn_tree_in_t *in, int fd, const void *rest, size_t n)
{
    memset(in, 0, sizeof(*in));
    in->fd = fd;
    if (n) {
        if (!(in->buf = malloc(n)))
            return -1;
        memcpy(in->buf, rest, n);
        in->len = in->cap = n;
    }
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* Stop reading. The descriptor stays open (stdin: its number must not
 * go to the next file the agent opens). */
static void in_close(mn_tree_in_t *in)
{
    in->fd = -1;
}

/* Room for 64 KiB more: unread bytes moved to the front, buf grown. */
static int make_room(mn_tree_in_t *in)
{
    if (in->off) {
        memmove(in->buf, in->buf + in->off, in->len - in->off);
        in->len -= in->off;
        in->off = 0;
    }
    if (in->cap - in->len >= 65536)
        return 0;
    size_t cap = in->len + 65536;
    if (cap > MN_TREE_FRAME_MAX + 65536)
        return -1;
    uint8_t *nb = realloc(in->buf, cap);
    if (!nb)
        return -1;
    in->buf = nb;
    in->cap = cap;
    return 0;
}

void mn_tree_in_read(mn_tree_in_t *in)
{
    while (in->fd >= 0) {
        if (make_room(in) < 0) {
            in_close(in);
            return;
        }
        ssize_t r = read(in->fd, in->buf + in->len, in->cap - in->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            in_close(in);
            return;
        }
        in->len += (size_t)r;
    }
}

int mn_tree_in_next(mn_tree_in_t *in, const uint8_t **msg, size_t *len)
{
    size_t have = in->len - in->off;
    if (have < 4)
        return 0;
    const uint8_t *p = in->buf + in->off;
    size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
               (size_t)p[3] << 24;
    if (n > MN_TREE_FRAME_MAX) { /* not from a parent of ours: stop */
        in_close(in);
        in->off = in->len;
        return 0;
    }
    if (have - 4 < n)
        return 0;
    *msg = p + 4;
    *len = n;
    in->off += 4 + n;
    return 1;
}

void mn_tree_in_free(mn_tree_in_t *in)
{
    in_close(in);
    free(in->buf);
    memset(in, 0, sizeof(*in));
    in->fd = -1;
}
