/* The shared-memory plumbing of pools: the segment with one slot per
 * worker, the segments that carry payloads too big for a ring, ring data
 * allocation and the futex doorbells. The protocol that runs over it lives
 * in pool_manager.c (manager side) and pool_worker.c (worker side). */
#include "lib/pool_chan.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"
#include "lib/shm.h"

size_t dv__pool_chan_size(uint32_t nslots)
{
    return sizeof(struct dv__pool_shared) +
           (size_t)nslots * sizeof(struct dv__pool_slot);
}

/* Pages for the segment's header and the heads of each slot's rings (its
 * control words and positions), so that a full /dev/shm is ENOSPC at
 * create and not SIGBUS at the first store. Ring payloads stay sparse:
 * 2 MiB per slot would otherwise be taken whether used or not. */
static int allocate_heads(int fd, uint32_t nslots, dv_error_t *err)
{
    off_t head = (off_t)sizeof(struct dv__pool_shared);
    off_t res = (off_t)offsetof(struct dv__pool_slot, results);
    if (dv__shm_allocate(fd, 0, head, "pool", err) < 0)
        return -1;
    for (uint32_t i = 0; i < nslots; i++) {
        off_t at = head + (off_t)i * (off_t)sizeof(struct dv__pool_slot);
        if (dv__shm_allocate(fd, at, 4096, "pool", err) < 0 ||
            dv__shm_allocate(fd, at + res, 4096, "pool", err) < 0)
            return -1;
    }
    return 0;
}

struct dv__pool_shared *dv__pool_chan_create(uint32_t nslots, char *name,
                                             size_t cap, dv_error_t *err)
{
    static _Atomic unsigned counter;
    char rest[64];
    snprintf(rest, sizeof(rest), "pool%ld-%u", (long)getpid(),
             atomic_fetch_add(&counter, 1));
    if (dv__shm_name(name, cap, rest) < 0) {
        dv__errsys(err, "pool: segment name");
        return NULL;
    }
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        dv__errsys(err, "pool: shm_open %s", name);
        return NULL;
    }
    size_t size = dv__pool_chan_size(nslots);
    void *p = MAP_FAILED;
    int heads = 1; /* -1: allocate_heads failed and said why */
    if (ftruncate(fd, (off_t)size) == 0 &&
        (heads = allocate_heads(fd, nslots, err)) == 0)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED && heads >= 0)
        dv__errsys(err, "pool: map %zu bytes of shared memory", size);
    if (p == MAP_FAILED) {
        int saved = errno;
        close(fd);
        shm_unlink(name);
        errno = saved;
        return NULL;
    }
    close(fd);
    struct dv__pool_shared *sh = p;
    sh->nslots = nslots;
    sh->owner = (int32_t)getpid();
    sh->magic = DV__POOL_MAGIC;
    return sh;
}

struct dv__pool_shared *dv__pool_chan_attach(const char *name, size_t *size,
                                             dv_error_t *err)
{
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0) {
        dv__errsys(err, "pool worker: shm_open %s", name);
        return NULL;
    }
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 &&
        (size_t)st.st_size >= sizeof(struct dv__pool_shared))
        p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                 fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        dv__errprintf(err, EINVAL, "pool worker: cannot map %s", name);
        return NULL;
    }
    struct dv__pool_shared *sh = p;
    if (sh->magic != DV__POOL_MAGIC ||
        dv__pool_chan_size(sh->nslots) != (size_t)st.st_size) {
        munmap(p, (size_t)st.st_size);
        dv__errprintf(err, EINVAL, "pool worker: %s is not a pool", name);
        return NULL;
    }
    *size = (size_t)st.st_size;
    return sh;
}

void dv__pool_chan_release(struct dv__pool_shared *sh, size_t size,
                           const char *name)
{
    int saved = errno;
    if (sh)
        munmap(sh, size);
    if (name)
        shm_unlink(name);
    errno = saved;
}

int dv__pool_big_name(char *buf, size_t cap, const char *base, char kind,
                      uint32_t slot, uint64_t gen, uint64_t seq)
{
    int n = snprintf(buf, cap, "%s.%c%u-%llu-%llu", base, kind, slot,
                     (unsigned long long)gen, (unsigned long long)seq);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int dv__pool_big_write(const char *name, const void *data, size_t len)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    const unsigned char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : ENOSPC;
            close(fd);
            shm_unlink(name);
            errno = saved;
            return -1;
        }
        done += (size_t)w;
    }
    close(fd);
    return 0;
}

int dv__pool_big_read(const char *name, void **data, size_t len)
{
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0)
        return -1;
    shm_unlink(name);
    unsigned char *p = malloc(len ? len : 1);
    size_t done = 0;
    while (p && done < len) {
        ssize_t r = read(fd, p + done, len - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(p);
            p = NULL;
            errno = r < 0 ? errno : EIO;
            break;
        }
        done += (size_t)r;
    }
    close(fd);
    if (!p)
        return -1;
    *data = p;
    return 0;
}

uint64_t dv__pool_data_alloc(uint64_t *pos, uint64_t freed, uint64_t len)
{
    /* 16-byte aligned, so a task may read its bytes as a struct. */
    uint64_t p = (*pos + 15) & ~(uint64_t)15;
    uint64_t o = p % DV__POOL_DATA;
    if (len == 0)
        return p;
    if (o + len > DV__POOL_DATA)
        p += DV__POOL_DATA - o; /* payloads never wrap: skip to the start */
    if (p + len - freed > DV__POOL_DATA)
        return UINT64_MAX;
    *pos = p + len;
    return p;
}

void dv__pool_futex_wait(_Atomic uint32_t *word, uint32_t val,
                         const struct timespec *deadline)
{
    (void)dv__futex_wait((uint32_t *)word, val, deadline);
}

void dv__pool_futex_wake(_Atomic uint32_t *word)
{
    dv__futex_wake((uint32_t *)word, INT_MAX);
}

void dv__pool_ring_bell(_Atomic uint32_t *word, _Atomic uint32_t *sleeping,
                        bool force)
{
    /* The caller published its news before; the fence pairs with the
     * sleeper's store of *sleeping and re-check (Dekker): one of the two
     * sees the other. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(sleeping, memory_order_relaxed) == 0 && !force)
        return;
    /* The first ringer clears the flag: later ones make no system call
     * while the sleeper is on its way up (it re-reads everything then). */
    if (atomic_exchange(sleeping, 0) == 1 || force) {
        atomic_fetch_add(word, 1);
        dv__pool_futex_wake(word);
    }
}

double dv__pool_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
