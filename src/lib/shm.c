/* Shared-memory segments of queues and events, and the 64-byte handles
 * that name them. A segment is "/drover.<job>.<name>" (so teardown can
 * remove every object of a job); its header holds a random token, and a
 * handle attaches only when its token matches: a forged handle gives
 * EINVAL, one whose segment is gone ENOENT. */
#include "lib/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "drover/node.h"
#include "lib/internal.h"
#include "lib/remote.h"

/* Handle layout (native byte order: handles never leave the node's job
 * processes in this form). */
#define HANDLE_MAGIC 0x31485644u /* "DVH1" */
#define HANDLE_VERSION 1
struct handle_wire {
    uint32_t magic;
    uint8_t version;
    uint8_t kind;
    uint16_t node;
    uint64_t token;
    uint64_t job_hash;
    char name[32];
    uint32_t check;
    uint32_t reserved;
};
_Static_assert(sizeof(struct handle_wire) == sizeof(dv_handle_t),
               "handle layout");

static uint64_t fnv1a64(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint32_t handle_check(const struct handle_wire *w)
{
    return (uint32_t)fnv1a64(w, offsetof(struct handle_wire, check));
}

static uint64_t job_hash(void)
{
    const char *job = dv__job_id();
    return fnv1a64(job, strlen(job));
}

static int valid_name(const char *name, size_t cap)
{
    size_t n = strnlen(name, cap);
    if (n == 0 || n == cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!(c == '.' || c == '-' || (c >= '0' && c <= '9') ||
              (c >= 'a' && c <= 'z')))
            return 0;
    }
    return 1;
}

static int map_fd(struct dv__shm *s, int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -1;
    s->hdr = p;
    s->size = size;
    s->fd = fd;
    return 0;
}

/* Open a fresh, exclusive name "<prefix><pid>.<n>". */
static int open_new(struct dv__shm *s, char prefix, char *path, size_t cap)
{
    static unsigned serial;
    for (int tries = 0; tries < 64; tries++) {
        unsigned n = __atomic_fetch_add(&serial, 1, __ATOMIC_RELAXED);
        snprintf(s->name, sizeof(s->name), "%c%ld.%u", prefix, (long)getpid(),
                 n);
        if (dv__shm_name(path, cap, s->name) < 0)
            return -1;
        int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

int dv__shm_allocate(int fd, off_t off, off_t len, const char *what,
                     dv_error_t *err)
{
    int r = posix_fallocate(fd, off, len);
    if (r == ENOSPC)
        return dv__errprintf(err, r, "%s: no space in /dev/shm for %lld bytes",
                             what, (long long)len);
    if (r != 0)
        return dv__errprintf(err, r, "%s: allocate %lld bytes: %s", what,
                             (long long)len, strerror(r));
    return 0;
}

int dv__shm_create(struct dv__shm *s, uint32_t kind, char prefix, size_t size,
                   dv_error_t *err)
{
    char path[128];
    uint64_t token;
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    if (getrandom(&token, sizeof(token), 0) != (ssize_t)sizeof(token))
        return dv__errsys(err, "shared memory: getrandom");
    int fd = open_new(s, prefix, path, sizeof(path));
    if (fd < 0)
        return dv__errsys(err, "shared memory: shm_open");
    size_t head = size < DV__SHM_HEAD ? size : DV__SHM_HEAD;
    int r = 0;
    if (ftruncate(fd, (off_t)size) < 0 || map_fd(s, fd, size) < 0)
        r = dv__errsys(err, "shared memory: %s of %zu bytes", path, size);
    else if (dv__shm_allocate(fd, 0, (off_t)head, "shared memory", err) < 0)
        r = -1;
    if (r < 0) {
        int saved = errno;
        if (s->hdr)
            munmap(s->hdr, size);
        s->hdr = NULL;
        s->fd = -1;
        shm_unlink(path);
        close(fd);
        errno = saved;
        return -1;
    }
    s->owner = getpid();
    s->hdr->version = DV__SHM_VERSION;
    s->hdr->kind = kind;
    s->hdr->creator = (int32_t)s->owner;
    s->hdr->token = token ? token : 1;
    s->hdr->size = size;
    return 0;
}

static int decode(const dv_handle_t *h, uint32_t kind, struct handle_wire *w,
                  dv_error_t *err)
{
    if (!h)
        return dv__errprintf(err, EINVAL, "handle: NULL");
    memcpy(w, h->bytes, sizeof(*w));
    if (w->magic != HANDLE_MAGIC || w->version != HANDLE_VERSION ||
        w->reserved != 0 || w->check != handle_check(w) ||
        !valid_name(w->name, sizeof(w->name)))
        return dv__errprintf(err, EINVAL, "handle: not a drover handle");
    if (w->kind != kind)
        return dv__errprintf(err, EINVAL, "handle: of another kind (%u)",
                             w->kind);
    if (w->job_hash != job_hash())
        return dv__errprintf(err, EINVAL, "handle: of another job");
    return 0;
}

static int check_header(const struct dv__shm *s, const struct handle_wire *w,
                        dv_error_t *err)
{
    const struct dv__shm_hdr *hd = s->hdr;
    if (__atomic_load_n(&hd->magic, __ATOMIC_ACQUIRE) != DV__SHM_MAGIC ||
        hd->version != DV__SHM_VERSION || hd->kind != w->kind ||
        hd->token != w->token || hd->size != s->size)
        return dv__errprintf(err, EINVAL, "handle: %s: token mismatch",
                             w->name);
    return 0;
}

int dv__shm_attach(struct dv__shm *s, const dv_handle_t *h, uint32_t kind,
                   dv_error_t *err)
{
    struct handle_wire w;
    char path[128];
    struct stat st;
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    if (decode(h, kind, &w, err) < 0)
        return -1;
    if (dv__shm_name(path, sizeof(path), w.name) < 0)
        return dv__errsys(err, "handle: %s", w.name);
    int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        int saved = errno, gone = saved == ENOENT, self = dv_node_self();
        errno = saved;
        if (gone && self >= 0 && self != w.node)
            return dv__errprintf(err, ENOENT,
                                 "handle: %s lives on node %u, not here "
                                 "(node %d)",
                                 w.name, w.node, self);
        if (gone)
            return dv__errprintf(err, ENOENT,
                                 "handle: %s: no such object "
                                 "(destroyed?)",
                                 w.name);
        return dv__errsys(err, "handle: %s", w.name);
    }
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct dv__shm_hdr)) {
        close(fd);
        return dv__errprintf(err, EINVAL, "handle: %s: not an object", w.name);
    }
    if (map_fd(s, fd, (size_t)st.st_size) < 0) {
        dv__errsys(err, "handle: %s: mmap", w.name);
        close(fd);
        return -1;
    }
    snprintf(s->name, sizeof(s->name), "%s", w.name);
    if (check_header(s, &w, err) < 0) {
        dv__shm_release(s);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int dv__shm_handle_node(const dv_handle_t *h)
{
    struct handle_wire w;
    if (!h)
        return -1;
    memcpy(&w, h->bytes, sizeof(w));
    if (w.magic != HANDLE_MAGIC || w.version != HANDLE_VERSION ||
        w.check != handle_check(&w))
        return -1;
    return w.node;
}

void dv__shm_handle(const struct dv__shm *s, dv_handle_t *out)
{
    struct handle_wire w;
    memset(&w, 0, sizeof(w));
    w.magic = HANDLE_MAGIC;
    w.version = HANDLE_VERSION;
    w.kind = (uint8_t)s->hdr->kind;
    int node = dv_node_self();
    w.node = node > 0 && node <= UINT16_MAX ? (uint16_t)node : 0;
    w.token = s->hdr->token;
    w.job_hash = job_hash();
    snprintf(w.name, sizeof(w.name), "%s", s->name);
    w.check = handle_check(&w);
    memcpy(out->bytes, &w, sizeof(w));
}

void dv__shm_release(struct dv__shm *s)
{
    int saved = errno;
    if (s->owner && s->owner == getpid()) {
        char path[128];
        if (dv__shm_name(path, sizeof(path), s->name) == 0)
            shm_unlink(path);
    }
    if (s->hdr)
        munmap(s->hdr, s->size);
    if (s->fd >= 0)
        close(s->fd);
    s->hdr = NULL;
    s->fd = -1;
    errno = saved;
}
