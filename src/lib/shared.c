/* Shared memory blocks (multiprocessing's Value and Array): a segment
 * whose first page is the header and a process-shared robust mutex, and
 * whose bytes start at the second page, so that a mapping's data is
 * page-aligned for any C type. dv_shared_read and dv_shared_write copy
 * under the mutex, so each call is atomic against the others; a process
 * that dies holding it leaves the bytes as far as it got, and the next
 * locker goes on. From another node the block is a relay (remote.c): a
 * read or write is one operation on the home node, which runs the same
 * calls there (remote_serve.c). */
#include "drover/shared.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "lib/remote.h"
#include "lib/shm.h"

#define DATA_OFF ((size_t)DV__SHM_HEAD)

struct mshared {
    struct dv__shm_hdr common;
    _Alignas(64) pthread_mutex_t lock;
    uint64_t len; /* bytes of the block, from DATA_OFF */
};

_Static_assert(sizeof(struct mshared) <= DATA_OFF, "shared header size");

struct dv_shared {
    dv__remote_t *remote; /* the block lives on another node (remote.c) */
    dv_handle_t remote_handle;
    struct dv__shm shm;
    struct mshared *sh;
    unsigned char *data; /* NULL for a remote block */
    size_t len;
};

static int init_lock(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (r == 0)
        r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0)
        r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (r == 0)
        r = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return r;
}

static int block_lock(dv_shared_t *s, dv_error_t *err)
{
    int r = pthread_mutex_lock(&s->sh->lock);
    if (r == EOWNERDEAD)
        r = pthread_mutex_consistent(&s->sh->lock);
    if (r != 0)
        return dv__errprintf(err, r == ENOTRECOVERABLE ? EIO : r,
                             "shared memory: lock: %s", strerror(r));
    return 0;
}

dv_shared_t *dv_shared_create(size_t size, dv_error_t *err)
{
    if (size > DV_SHARED_MAX) {
        dv__errprintf(err, EINVAL, "shared memory: %zu bytes: over %zu", size,
                      DV_SHARED_MAX);
        return NULL;
    }
    dv_shared_t *s = calloc(1, sizeof(*s));
    if (!s) {
        dv__errprintf(err, ENOMEM, "shared memory: out of memory");
        return NULL;
    }
    if (dv__shm_create(&s->shm, DV__SHM_SHARED, 'm', DATA_OFF + size, err) <
        0) {
        free(s);
        return NULL;
    }
    s->sh = (struct mshared *)s->shm.hdr;
    int r = size ? dv__shm_allocate(s->shm.fd, (off_t)DATA_OFF, (off_t)size,
                                    "shared memory", err)
                 : 0;
    if (r == 0 && (r = init_lock(&s->sh->lock)) != 0)
        r = dv__errprintf(err, r, "shared memory: process-shared mutex: %s",
                          strerror(r));
    if (r < 0) {
        dv_shared_destroy(&s);
        return NULL;
    }
    s->sh->len = size;
    s->data = (unsigned char *)s->shm.hdr + DATA_OFF;
    s->len = size;
    __atomic_store_n(&s->sh->common.magic, DV__SHM_MAGIC, __ATOMIC_RELEASE);
    return s;
}

/* The block of another node: its size comes from there. */
static int attach_remote(dv_shared_t *s, const dv_handle_t *h, int home,
                         dv_error_t *err)
{
    s->shm.fd = -1;
    s->remote_handle = *h;
    if (!(s->remote = dv__remote_open(h, home, err)))
        return -1;
    void *out = NULL;
    size_t n = 0;
    uint64_t len;
    if (dv__remote_op(s->remote, DV_ROP_SHARED_SIZE, 0, NULL, 0, NULL, &out, &n,
                      err) < 0)
        return -1;
    int ok = n == sizeof(len);
    if (ok)
        memcpy(&len, out, sizeof(len));
    free(out);
    if (!ok || len > DV_SHARED_MAX)
        return dv__errprintf(err, EPROTO, "shared memory: bad size reply");
    s->len = (size_t)len;
    return 0;
}

dv_shared_t *dv_shared_attach(const dv_handle_t *h, dv_error_t *err)
{
    dv_shared_t *s = calloc(1, sizeof(*s));
    if (!s) {
        dv__errprintf(err, ENOMEM, "shared memory: out of memory");
        return NULL;
    }
    int home = dv__remote_home(h);
    if (home >= 0) {
        if (attach_remote(s, h, home, err) < 0)
            dv_shared_destroy(&s);
        return s;
    }
    if (dv__shm_attach(&s->shm, h, DV__SHM_SHARED, err) < 0) {
        free(s);
        return NULL;
    }
    s->sh = (struct mshared *)s->shm.hdr;
    if (s->shm.size < DATA_OFF || s->sh->len != s->shm.size - DATA_OFF) {
        dv__errprintf(err, EINVAL, "shared memory: handle: not a block");
        dv_shared_destroy(&s);
        errno = EINVAL;
        return NULL;
    }
    s->data = (unsigned char *)s->shm.hdr + DATA_OFF;
    s->len = s->sh->len;
    return s;
}

int dv_shared_handle(const dv_shared_t *s, dv_handle_t *out)
{
    if (!s || !out) {
        errno = EINVAL;
        return -1;
    }
    if (s->remote)
        *out = s->remote_handle;
    else
        dv__shm_handle(&s->shm, out);
    return 0;
}

size_t dv_shared_size(const dv_shared_t *s)
{
    return s ? s->len : 0;
}

void *dv_shared_data(dv_shared_t *s)
{
    if (!s)
        errno = EINVAL;
    return s ? s->data : NULL;
}

static int check_range(const dv_shared_t *s, size_t off, const void *buf,
                       size_t len, const char *what, dv_error_t *err)
{
    if (!s)
        return dv__errprintf(err, EINVAL, "shared memory: %s: NULL block",
                             what);
    if (off > s->len || len > s->len - off)
        return dv__errprintf(err, EINVAL,
                             "shared memory: %s of %zu bytes at %zu: outside "
                             "the block of %zu bytes",
                             what, len, off, s->len);
    if (!buf && len)
        return dv__errprintf(err, EINVAL, "shared memory: %s: NULL buffer",
                             what);
    return 0;
}

/* One piece of a remote read: in is (offset, length), out the bytes. */
static int remote_read(dv_shared_t *s, size_t off, unsigned char *buf,
                       size_t len, dv_error_t *err)
{
    uint64_t in[2] = {off, len};
    void *out = NULL;
    size_t n = 0;
    if (dv__remote_op(s->remote, DV_ROP_SHARED_READ, 0, in, sizeof(in), NULL,
                      &out, &n, err) < 0)
        return -1;
    int ok = n == len;
    if (ok && len)
        memcpy(buf, out, len);
    free(out);
    return ok ? 0 : dv__errprintf(err, EPROTO, "shared memory: bad reply");
}

/* One piece of a remote write: in is the offset, then the bytes. */
static int remote_write(dv_shared_t *s, size_t off, const unsigned char *buf,
                        size_t len, dv_error_t *err)
{
    uint64_t o = off;
    unsigned char *in = malloc(sizeof(o) + len);
    if (!in)
        return dv__errprintf(err, ENOMEM, "shared memory: out of memory");
    memcpy(in, &o, sizeof(o));
    if (len)
        memcpy(in + sizeof(o), buf, len);
    int rc = dv__remote_op(s->remote, DV_ROP_SHARED_WRITE, 0, in,
                           sizeof(o) + len, NULL, NULL, NULL, err);
    free(in);
    return rc;
}

int dv_shared_read(dv_shared_t *s, size_t off, void *buf, size_t len,
                   dv_error_t *err)
{
    if (check_range(s, off, buf, len, "read", err) < 0)
        return -1;
    unsigned char *b = buf;
    if (s->remote) {
        do {
            size_t n = len < DV_SHARED_ATOMIC_MAX ? len : DV_SHARED_ATOMIC_MAX;
            if (remote_read(s, off, b, n, err) < 0)
                return -1;
            off += n, b += n, len -= n;
        } while (len);
        return 0;
    }
    if (block_lock(s, err) < 0)
        return -1;
    if (len)
        memcpy(b, s->data + off, len);
    pthread_mutex_unlock(&s->sh->lock);
    return 0;
}

int dv_shared_write(dv_shared_t *s, size_t off, const void *buf, size_t len,
                    dv_error_t *err)
{
    if (check_range(s, off, buf, len, "write", err) < 0)
        return -1;
    const unsigned char *b = buf;
    if (s->remote) {
        do {
            size_t n = len < DV_SHARED_ATOMIC_MAX ? len : DV_SHARED_ATOMIC_MAX;
            if (remote_write(s, off, b, n, err) < 0)
                return -1;
            off += n, b += n, len -= n;
        } while (len);
        return 0;
    }
    dv__remote_fence();
    if (block_lock(s, err) < 0)
        return -1;
    if (len)
        memcpy(s->data + off, b, len);
    pthread_mutex_unlock(&s->sh->lock);
    return 0;
}

void dv_shared_destroy(dv_shared_t **sp)
{
    if (!sp || !*sp)
        return;
    int saved = errno;
    dv__remote_close(&(*sp)->remote);
    dv__shm_release(&(*sp)->shm);
    free(*sp);
    *sp = NULL;
    errno = saved;
}
