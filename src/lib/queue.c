/* Multi-producer, multi-consumer queues in one shared-memory segment each.
 *
 * Layout: a header (robust process-shared mutex, positions, futex words)
 * and a byte ring, the heap, of QUEUE_HEAP bytes (sparse: only touched
 * pages cost memory). Each message sits in the ring as a 64-byte
 * descriptor followed by its payload. Positions are 64-bit and only grow;
 * pos & mask is the offset in the ring. Three of them, under the lock:
 *   rel <= head <= alloc
 * [rel, head): messages taken by consumers, being copied out or done;
 * [head, alloc): messages being written or ready. A SKIP descriptor sends
 * readers to the start of the ring where a message did not fit at its end.
 *
 * The lock only covers reserving and claiming; payloads are copied outside
 * it, so producers and consumers overlap. A descriptor's state says who
 * owns it (WRITING: its producer, READING: its consumer, with their pid),
 * so when a process is killed in the middle of a copy, the others notice
 * (the pid is gone) and skip or free that message. A lent message
 * (dv_queue_get_lend) stays READING until its view is released, tagged
 * with the lend's number and the handle that took it, so that a wrong or
 * second release is refused and a handle's destroy finds its views. A
 * process killed while holding the lock leaves it EOWNERDEAD: the next
 * locker repairs the counters. Waiters spin briefly (not at all for a while
 * after a spinner lost its CPU to other processes: dv__spin_while), then sleep
 * on a futex word (a sequence number), and are woken only when a waiter count
 * says someone sleeps. A put wakes one consumer, which passes the wake on if
 * more is left; a consumer killed between that wake and its claim takes
 * the wake with it, and no survivor can tell, so sleepers also look again
 * every LOST_WAKE_MS. */
#include "drover/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/remote.h"
#include "lib/shm.h"

#define QUEUE_HEAP ((uint64_t)DV_QUEUE_BYTES) /* a power of two */
#define DESC 64                           /* descriptor bytes, and alignment */
#define RESERVE_STEP ((uint64_t)16 << 20) /* fallocate granularity */
#define SMALL_BUF ((size_t)64 << 10)      /* malloc'd under the lock */
#define EARLY_MIN ((uint64_t)16 << 20)    /* see early_wrap() */
#define POLL_MS 10        /* liveness polling while a copy blocks us */
#define LOST_WAKE_MS 2000 /* the longest sleep between two looks */

enum { M_WRITING = 1, M_READY, M_READING, M_DONE, M_SKIP };

struct desc {
    uint32_t state; /* M_*, atomic */
    int32_t pid;    /* the producer, then the consumer, that owns it */
    uint64_t len;   /* payload bytes */
    /* A lent message (dv_queue_get_lend), under the lock: the lend's
     * number and the handle that took it; 0 for other claims. */
    uint64_t tag;
    uint32_t hid;
    uint8_t pad[DESC - 28];
};

struct qshared {
    struct dv__shm_hdr common;
    uint64_t maxsize;
    uint64_t heap_off; /* from the start of the segment */
    uint64_t heap_cap;
    _Alignas(64) pthread_mutex_t lock;
    /* Under the lock (count is also read without it). */
    _Alignas(64) uint64_t alloc, head, rel;
    uint64_t count;      /* messages in [head, alloc), atomic */
    uint64_t reserved;   /* heap bytes fallocate'd from offset 0 */
    uint64_t early_min;  /* free bytes at the front that allow an early wrap */
    uint64_t early_skip; /* position of the last early wrap's SKIP */
    uint32_t closed;     /* atomic */
    /* Joinable accounting (atomic, no lock): messages put and not yet
     * matched by dv_queue_task_done, and holders (dv_queue_hold). */
    uint64_t unfinished;
    uint32_t holders;
    /* Futex words: bumped on each publish / free, with sleeper counts. */
    _Alignas(64) uint32_t data_seq;
    uint32_t data_sleepers;
    _Alignas(64) uint32_t space_seq;
    uint32_t space_sleepers;
    _Alignas(64) uint32_t done_seq; /* bumped when unfinished reaches 0 */
    uint32_t done_sleepers;
    uint64_t lend_seq; /* lends made, under the lock */
    uint32_t next_hid; /* handles made, atomic */
};

/* Its page is allocated at create (dv__shm_create). */
_Static_assert(sizeof(struct qshared) <= DV__SHM_HEAD, "queue header size");

struct dv_queue {
    dv__remote_t *remote; /* the queue lives on another node (remote.c) */
    dv_handle_t remote_handle;
    struct dv__shm shm;
    struct qshared *sh;
    unsigned char *heap;
    uint64_t mask;
    uint32_t hid;  /* this handle, among the queue's (views it lent) */
    uint64_t lent; /* views lent through this handle and held, atomic */
    /* Another node's queue: a message too large for dv_queue_get_into,
     * returned first by the next get. */
    pthread_mutex_t stash_lock;
    void *stash;
    size_t stash_len;
    bool stashed;
};

static inline struct desc *desc_at(const dv_queue_t *q, uint64_t pos)
{
    return (struct desc *)(q->heap + (pos & q->mask));
}

static inline uint64_t footprint(uint64_t len)
{
    return (DESC + len + DESC - 1) & ~(uint64_t)(DESC - 1);
}

static inline uint64_t next_lap(const dv_queue_t *q, uint64_t pos)
{
    return (pos | q->mask) + 1;
}

static inline uint32_t ld32(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void st32(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The position after the descriptor at pos (read under the lock). */
static uint64_t desc_next(const dv_queue_t *q, uint64_t pos)
{
    const struct desc *d = desc_at(q, pos);
    if (ld32(&d->state) == M_SKIP)
        return next_lap(q, pos);
    return pos + footprint(d->len);
}

static void add_count(struct qshared *sh, int64_t delta)
{
    __atomic_store_n(&sh->count, sh->count + (uint64_t)delta, __ATOMIC_RELAXED);
}

/* Recount after a process died holding the lock: every step of a critical
 * section leaves positions valid; only count, and a claim cut short (a
 * READING descriptor still at head), need fixing. */
static void repair(dv_queue_t *q)
{
    struct qshared *sh = q->sh;
    while (sh->head != sh->alloc &&
           ld32(&desc_at(q, sh->head)->state) == M_READING)
        sh->head = desc_next(q, sh->head);
    uint64_t n = 0;
    for (uint64_t p = sh->head; p != sh->alloc; p = desc_next(q, p)) {
        if (ld32(&desc_at(q, p)->state) != M_SKIP)
            n++;
    }
    __atomic_store_n(&sh->count, n, __ATOMIC_RELAXED);
}

static void bump(uint32_t *seq, uint32_t *sleepers, int n);

static int qlock(dv_queue_t *q)
{
    pthread_mutex_t *m = &q->sh->lock;
    int r = EBUSY;
    for (int i = 0; i < 64 && r == EBUSY; i++) {
        r = pthread_mutex_trylock(m);
        if (r == EBUSY)
            dv__cpu_relax();
    }
    if (r == EBUSY)
        r = pthread_mutex_lock(m);
    if (r == EOWNERDEAD) {
        repair(q);
        r = pthread_mutex_consistent(m);
        /* The dead one may have freed a slot or owed a wake: whoever sleeps
         * looks again. */
        bump(&q->sh->space_seq, &q->sh->space_sleepers, INT_MAX);
        bump(&q->sh->data_seq, &q->sh->data_sleepers, INT_MAX);
    }
    if (r != 0) {
        errno = r == ENOTRECOVERABLE ? EIO : r;
        return -1;
    }
    return 0;
}

static void qunlock(dv_queue_t *q)
{
    pthread_mutex_unlock(&q->sh->lock);
}

/* Bump a sequence word; wake sleepers only if there are any. */
static void bump(uint32_t *seq, uint32_t *sleepers, int n)
{
    __atomic_fetch_add(seq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(sleepers, __ATOMIC_SEQ_CST) != 0)
        dv__futex_wake(seq, n);
}

/* Wait until *seq moves from old: spin, then sleep until dl, or POLL_MS
 * when poll is set (someone's copy blocks us: check they still live), and
 * at most LOST_WAKE_MS (a wake may have died with its waiter). */
static void wait_seq(uint32_t *seq, uint32_t *sleepers, uint32_t old,
                     const struct timespec *dl, bool poll)
{
    if (dv__spin_while(seq, old))
        return;
    struct timespec t = dv__deadline_min(dl, poll ? POLL_MS : LOST_WAKE_MS);
    __atomic_fetch_add(sleepers, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(seq, __ATOMIC_SEQ_CST) == old)
        dv__futex_wait(seq, old, &t);
    __atomic_fetch_sub(sleepers, 1, __ATOMIC_SEQ_CST);
}

/* Free what consumers finished, oldest first. Returns true if it did. */
static bool sweep(dv_queue_t *q)
{
    struct qshared *sh = q->sh;
    uint64_t start = sh->rel;
    while (sh->rel != sh->head) {
        uint32_t st = ld32(&desc_at(q, sh->rel)->state);
        if (st != M_DONE && st != M_SKIP)
            break;
        sh->rel = desc_next(q, sh->rel);
    }
    return sh->rel != start;
}

/* One message less to finish; wakes joiners at 0. Returns -1 (ERANGE)
 * when there was none. */
static int finish_one(dv_queue_t *q)
{
    struct qshared *sh = q->sh;
    uint64_t n = __atomic_load_n(&sh->unfinished, __ATOMIC_SEQ_CST);
    do {
        if (n == 0) {
            errno = ERANGE;
            return -1;
        }
    } while (!__atomic_compare_exchange_n(&sh->unfinished, &n, n - 1, false,
                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    if (n == 1)
        bump(&sh->done_seq, &sh->done_sleepers, INT_MAX);
    return 0;
}

/* Under the lock: the descriptor at pos is owned by pid in state st and
 * pid is dead; drop the message. Returns true when space was freed. */
static bool drop_dead(dv_queue_t *q, uint64_t pos, uint32_t st, pid_t pid)
{
    struct qshared *sh = q->sh;
    struct desc *d = desc_at(q, pos);
    if (ld32(&d->state) != st || d->pid != pid)
        return false; /* it moved on meanwhile */
    if (st == M_WRITING && pos == sh->head) {
        sh->head = desc_next(q, pos);
        add_count(sh, -1);
        finish_one(q); /* nobody will take it, so nobody will finish it */
    } else if (st != M_READING) {
        return false;
    }
    st32(&d->state, M_DONE);
    return sweep(q);
}

static void recover_dead(dv_queue_t *q, uint64_t pos, uint32_t st, pid_t pid)
{
    if (pid <= 0 || dv__pid_alive(pid) || qlock(q) < 0)
        return;
    bool freed = drop_dead(q, pos, st, pid);
    qunlock(q);
    if (freed)
        bump(&q->sh->space_seq, &q->sh->space_sleepers, INT_MAX);
    bump(&q->sh->data_seq, &q->sh->data_sleepers, INT_MAX);
}

/* What blocked an operation: a descriptor whose owner may have died. */
struct obstacle {
    uint64_t pos;
    uint32_t state;
    pid_t pid;
};

static void note_owner(const dv_queue_t *q, uint64_t pos, struct obstacle *o)
{
    const struct desc *d = desc_at(q, pos);
    uint32_t st = ld32(&d->state);
    if (st == M_WRITING || st == M_READING) {
        o->pos = pos;
        o->state = st;
        o->pid = d->pid;
    }
}

static void write_skip(dv_queue_t *q, uint64_t pos)
{
    struct desc *d = desc_at(q, pos);
    d->len = 0;
    d->pid = 0;
    st32(&d->state, M_SKIP);
}

/* Under the lock, with nothing in the queue: go on at the front of the
 * ring, whose pages are warm, rather than marching through all of it. Each
 * store leaves rel <= head <= alloc with only a SKIP between them. */
static void restart_front(dv_queue_t *q)
{
    struct qshared *sh = q->sh;
    write_skip(q, sh->alloc);
    sh->alloc = next_lap(q, sh->alloc);
    sh->head = sh->alloc;
    sh->rel = sh->alloc;
}

/* Wrap to the front before the end of the ring when enough bytes are free
 * there: consumers that keep up then make the ring reuse a few warm,
 * cached megabytes instead of marching through all of it. After such a
 * wrap, a put finds room only in front of the oldest message, so it is
 * done only where that room holds maxsize messages of this size (never
 * for unbounded queues): a put does not wait before maxsize messages
 * wait. With messages of mixed sizes it still may; then early_min
 * doubles, so early wraps become rarer. */
static bool early_wrap(const dv_queue_t *q, uint64_t n)
{
    const struct qshared *sh = q->sh;
    uint64_t front = sh->rel & q->mask, fp = footprint(n);
    if (sh->maxsize == 0 || sh->maxsize > sh->heap_cap / fp)
        return false;
    return (sh->rel & ~q->mask) == (sh->alloc & ~q->mask) &&
           front >= sh->early_min && front >= sh->maxsize * fp;
}

/* Make sure heap bytes [0, end) have pages, so that running out of shared
 * memory is an error here and not SIGBUS during a copy. */
static int reserve_pages(dv_queue_t *q, uint64_t end, dv_error_t *err)
{
    struct qshared *sh = q->sh;
    if (end <= sh->reserved)
        return 0;
    uint64_t to = (end + RESERVE_STEP - 1) & ~(RESERVE_STEP - 1);
    if (to > sh->heap_cap)
        to = sh->heap_cap;
    int r = posix_fallocate(q->shm.fd, (off_t)(sh->heap_off + sh->reserved),
                            (off_t)(to - sh->reserved));
    if (r != 0)
        return dv__errprintf(err, r == ENOSPC ? ENOMEM : r,
                             "queue: no space in /dev/shm for the payload");
    sh->reserved = to;
    return 0;
}

/* Under the lock: reserve room for len bytes at *pos. EAGAIN: full. */
static int try_reserve(dv_queue_t *q, uint64_t len, uint64_t *pos,
                       struct obstacle *o, dv_error_t *err)
{
    struct qshared *sh = q->sh;
    if (__atomic_load_n(&sh->closed, __ATOMIC_RELAXED))
        return dv__errprintf(err, EPIPE, "queue: closed");
    if (sh->maxsize && sh->count >= sh->maxsize)
        return dv__errprintf(err, EAGAIN, "queue: full");
    if ((sh->alloc & q->mask) != 0 && sh->rel == sh->alloc)
        restart_front(q);
    uint64_t n = footprint(len), p = sh->alloc, off = p & q->mask;
    bool early = off != 0 && early_wrap(q, n);
    bool wrap = early || (off != 0 && off + n > sh->heap_cap);
    uint64_t at = wrap ? next_lap(q, p) : p;
    if (at + n - sh->rel > sh->heap_cap) {
        if (sh->early_skip > sh->rel && sh->early_min < sh->heap_cap)
            sh->early_min *= 2; /* producers run ahead: wrap early less */
        note_owner(q, sh->rel, o);
        return dv__errprintf(err, EAGAIN, "queue: payload space full");
    }
    if (early)
        sh->early_skip = p;
    if (reserve_pages(q, (at & q->mask) + n, err) < 0)
        return -1;
    struct desc *d = desc_at(q, at);
    d->len = len;
    d->pid = (int32_t)dv__self_pid();
    st32(&d->state, M_WRITING);
    if (wrap)
        write_skip(q, p);
    sh->alloc = at + n;
    add_count(sh, 1);
    __atomic_fetch_add(&sh->unfinished, 1, __ATOMIC_SEQ_CST);
    *pos = at;
    return 0;
}

static int reserve(dv_queue_t *q, size_t len, double timeout_s, uint64_t *pos,
                   dv_error_t *err)
{
    struct qshared *sh = q->sh;
    struct timespec dl;
    bool has_dl = dv__deadline(timeout_s, &dl);
    for (;;) {
        uint32_t seq = ld32(&sh->space_seq);
        struct obstacle o = {0, 0, 0};
        if (qlock(q) < 0)
            return dv__errsys(err, "queue: lock");
        int r = try_reserve(q, len, pos, &o, err);
        qunlock(q);
        if (r == 0 || errno != EAGAIN || timeout_s == 0)
            return r;
        if (has_dl && dv__deadline_passed(&dl))
            return dv__errprintf(err, ETIMEDOUT, "queue: put timed out");
        wait_seq(&sh->space_seq, &sh->space_sleepers, seq, has_dl ? &dl : NULL,
                 o.pid != 0);
        if (o.pid)
            recover_dead(q, o.pos, o.state, o.pid);
    }
}

/* Total bytes of parts; SIZE_MAX when they overflow or one is NULL. */
static size_t iov_total(const struct iovec *iov, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if ((!iov[i].iov_base && iov[i].iov_len) ||
            iov[i].iov_len > SIZE_MAX - 1 - len)
            return SIZE_MAX;
        len += iov[i].iov_len;
    }
    return len;
}

/* Another node's queue: the parts travel as one message. */
static int remote_putv(dv_queue_t *q, const struct iovec *iov, int n,
                       size_t len, double timeout_s, dv_error_t *err)
{
    if (n == 1)
        return dv__remote_op(q->remote, DV_ROP_QUEUE_PUT, timeout_s,
                             iov[0].iov_base, len, NULL, NULL, NULL, err);
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf)
        return dv__errprintf(err, ENOMEM, "queue: put: out of memory");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len)
            memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    int rc = dv__remote_op(q->remote, DV_ROP_QUEUE_PUT, timeout_s, buf, len,
                           NULL, NULL, NULL, err);
    int saved = errno;
    free(buf);
    errno = saved;
    return rc;
}

int dv_queue_putv(dv_queue_t *q, const struct iovec *iov, int n,
                  double timeout_s, dv_error_t *err)
{
    size_t len = !q || n < 0 || (!iov && n) ? SIZE_MAX : iov_total(iov, n);
    if (len == SIZE_MAX)
        return dv__errprintf(err, EINVAL, "queue: put: bad argument");
    if (len > DV_MESSAGE_MAX)
        return dv__errprintf(err, EMSGSIZE,
                             "queue: message of %zu bytes over the limit "
                             "(%zu)",
                             len, DV_MESSAGE_MAX);
    if (q->remote)
        return remote_putv(q, iov, n, len, timeout_s, err);
    dv__remote_fence();
    uint64_t pos = 0;
    if (reserve(q, len, timeout_s, &pos, err) < 0)
        return -1;
    struct desc *d = desc_at(q, pos);
    unsigned char *to = (unsigned char *)d + DESC;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len)
            memcpy(to, iov[i].iov_base, iov[i].iov_len);
        to += iov[i].iov_len;
    }
    st32(&d->state, M_READY);
    bump(&q->sh->data_seq, &q->sh->data_sleepers, 1);
    return 0;
}

int dv_queue_put(dv_queue_t *q, const void *data, size_t len, double timeout_s,
                 dv_error_t *err)
{
    if (!q || (!data && len))
        return dv__errprintf(err, EINVAL, "queue: put: NULL argument");
    struct iovec one = {(void *)(uintptr_t)data, len};
    return dv_queue_putv(q, &one, 1, timeout_s, err);
}

/* How a claim takes its message. */
enum take_mode {
    TAKE_MALLOC, /* into *buf, (re)allocated to fit */
    TAKE_PLACE,  /* read in place by the caller */
    TAKE_LEND,   /* read in place, held until dv_queue_lend_release */
    TAKE_INTO,   /* into the caller's buffer of cap bytes */
};

struct take {
    enum take_mode mode;
    void *buf;    /* TAKE_MALLOC: the buffer so far (the caller frees it) */
    size_t cap;   /* its size, or TAKE_INTO's */
    size_t need;  /* TAKE_MALLOC: bytes to allocate; TAKE_INTO: too big */
    uint64_t pos; /* the claimed descriptor */
    uint64_t tag; /* TAKE_LEND: the lend's number */
};

/* Claim outcome besides 0 and -1: the caller must allocate a buffer of
 * t->need bytes outside the lock, then try again. */
#define NEED_BUFFER 1

/* Under the lock: make t's buffer fit len bytes (TAKE_MALLOC), or check
 * that it does (TAKE_INTO). */
static int fit_buffer(struct take *t, size_t len, dv_error_t *err)
{
    if (t->mode == TAKE_INTO && len > t->cap) {
        t->need = len;
        return dv__errprintf(err, EMSGSIZE,
                             "queue: message of %zu bytes, buffer of %zu", len,
                             t->cap);
    }
    if (t->mode != TAKE_MALLOC || (len <= t->cap && t->buf))
        return 0;
    if (len > SMALL_BUF) {
        t->need = len;
        return NEED_BUFFER;
    }
    void *nb = realloc(t->buf, len ? len : 1);
    if (!nb)
        return dv__errprintf(err, ENOMEM, "queue: get: out of memory");
    t->buf = nb;
    t->cap = len;
    return 0;
}

/* Under the lock: take the message at head as t says. */
static int try_claim(dv_queue_t *q, struct take *t, struct obstacle *o,
                     dv_error_t *err)
{
    struct qshared *sh = q->sh;
    while (sh->head != sh->alloc &&
           ld32(&desc_at(q, sh->head)->state) == M_SKIP)
        sh->head = next_lap(q, sh->head);
    if (sh->head == sh->alloc) {
        if (__atomic_load_n(&sh->closed, __ATOMIC_RELAXED))
            return dv__errprintf(err, EPIPE, "queue: closed");
        return dv__errprintf(err, EAGAIN, "queue: empty");
    }
    struct desc *d = desc_at(q, sh->head);
    if (ld32(&d->state) != M_READY) {
        note_owner(q, sh->head, o);
        return dv__errprintf(err, EAGAIN, "queue: empty");
    }
    int r = fit_buffer(t, (size_t)d->len, err);
    if (r != 0)
        return r;
    d->pid = (int32_t)dv__self_pid();
    d->tag = t->mode == TAKE_LEND ? ++sh->lend_seq : 0;
    d->hid = t->mode == TAKE_LEND ? q->hid : 0;
    t->tag = d->tag;
    st32(&d->state, M_READING);
    t->pos = sh->head;
    sh->head = desc_next(q, sh->head);
    add_count(sh, -1);
    return 0;
}

static int claim(dv_queue_t *q, double timeout_s, struct take *t,
                 dv_error_t *err)
{
    struct qshared *sh = q->sh;
    struct timespec dl;
    bool has_dl = dv__deadline(timeout_s, &dl);
    for (;;) {
        uint32_t seq = ld32(&sh->data_seq);
        struct obstacle o = {0, 0, 0};
        if (qlock(q) < 0)
            return dv__errsys(err, "queue: lock");
        bool was_full = sh->maxsize && sh->count >= sh->maxsize;
        int r = try_claim(q, t, &o, err);
        bool more = r == 0 && sh->count > 0;
        qunlock(q);
        if (r == 0) {
            if (more) /* pass the wake on: one wake per publish */
                bump(&sh->data_seq, &sh->data_sleepers, 1);
            /* A slot is free now, though its bytes may not be (an older
             * message's reader died mid-copy): producers waiting for a slot
             * must not wait for a release. */
            if (was_full)
                bump(&sh->space_seq, &sh->space_sleepers, INT_MAX);
            return 0;
        }
        if (r == NEED_BUFFER) {
            free(t->buf);
            t->cap = 0;
            if (!(t->buf = malloc(t->need)))
                return dv__errprintf(err, ENOMEM, "queue: get: out of memory");
            t->cap = t->need;
            continue;
        }
        if (errno != EAGAIN || timeout_s == 0)
            return -1;
        if (has_dl && dv__deadline_passed(&dl))
            return dv__errprintf(err, ETIMEDOUT, "queue: get timed out");
        wait_seq(&sh->data_seq, &sh->data_sleepers, seq, has_dl ? &dl : NULL,
                 o.pid != 0);
        if (o.pid)
            recover_dead(q, o.pos, o.state, o.pid);
    }
}

/* Under the lock: mark the message at pos done and free what can be
 * freed. Returns true if space was freed. */
static bool done_locked(dv_queue_t *q, uint64_t pos)
{
    st32(&desc_at(q, pos)->state, M_DONE);
    return sweep(q);
}

/* After the copy: mark the message done and free what can be freed. */
static void release(dv_queue_t *q, uint64_t pos)
{
    st32(&desc_at(q, pos)->state, M_DONE);
    if (qlock(q) < 0)
        return; /* the next locker sweeps */
    bool freed = sweep(q);
    qunlock(q);
    if (freed)
        bump(&q->sh->space_seq, &q->sh->space_sleepers, INT_MAX);
}

/* Another node's queue: the stashed message if there is one, else the
 * next one from its home node (*data malloc'd, the caller's). */
static int remote_take(dv_queue_t *q, void **data, size_t *len,
                       double timeout_s, dv_error_t *err)
{
    pthread_mutex_lock(&q->stash_lock);
    bool had = q->stashed;
    if (had) {
        *data = q->stash;
        *len = q->stash_len;
        q->stash = NULL;
        q->stashed = false;
    }
    pthread_mutex_unlock(&q->stash_lock);
    if (had)
        return 0;
    return dv__remote_op(q->remote, DV_ROP_QUEUE_GET, timeout_s, NULL, 0, NULL,
                         data, len, err);
}

/* Put a message taken from another node back in front of q's next get. */
static void remote_stash(dv_queue_t *q, void *data, size_t len)
{
    pthread_mutex_lock(&q->stash_lock);
    void *old = q->stashed ? q->stash : NULL;
    q->stash = data;
    q->stash_len = len;
    q->stashed = true;
    pthread_mutex_unlock(&q->stash_lock);
    free(old); /* two threads raced for one stash slot: cannot happen */
}

int dv_queue_get(dv_queue_t *q, void **data, size_t *len, double timeout_s,
                 dv_error_t *err)
{
    if (!q || !data || !len)
        return dv__errprintf(err, EINVAL, "queue: get: NULL argument");
    if (q->remote)
        return remote_take(q, data, len, timeout_s, err);
    struct take t = {.mode = TAKE_MALLOC};
    if (claim(q, timeout_s, &t, err) < 0) {
        int saved = errno;
        free(t.buf);
        errno = saved;
        return -1;
    }
    struct desc *d = desc_at(q, t.pos);
    size_t n = (size_t)d->len;
    if (n)
        memcpy(t.buf, (unsigned char *)d + DESC, n);
    release(q, t.pos);
    *data = t.buf;
    *len = n;
    return 0;
}

static int remote_get_into(dv_queue_t *q, void *buf, size_t cap, size_t *len,
                           double timeout_s, dv_error_t *err)
{
    void *data = NULL;
    size_t n = 0;
    if (remote_take(q, &data, &n, timeout_s, err) < 0)
        return -1;
    *len = n;
    if (n > cap) {
        remote_stash(q, data, n);
        return dv__errprintf(err, EMSGSIZE,
                             "queue: message of %zu bytes, buffer of %zu", n,
                             cap);
    }
    if (n)
        memcpy(buf, data, n);
    free(data);
    return 0;
}

int dv_queue_get_into(dv_queue_t *q, void *buf, size_t cap, size_t *len,
                      double timeout_s, dv_error_t *err)
{
    if (!q || (!buf && cap) || !len)
        return dv__errprintf(err, EINVAL, "queue: get: bad argument");
    if (q->remote)
        return remote_get_into(q, buf, cap, len, timeout_s, err);
    struct take t = {.mode = TAKE_INTO, .cap = cap};
    if (claim(q, timeout_s, &t, err) < 0) {
        if (errno == EMSGSIZE)
            *len = t.need;
        return -1;
    }
    struct desc *d = desc_at(q, t.pos);
    size_t n = (size_t)d->len;
    if (n)
        memcpy(buf, (unsigned char *)d + DESC, n);
    release(q, t.pos);
    *len = n;
    return 0;
}

int dv_queue_get_lend(dv_queue_t *q, dv_queue_view_t *view, double timeout_s,
                      dv_error_t *err)
{
    if (!q || !view)
        return dv__errprintf(err, EINVAL, "queue: get: NULL argument");
    memset(view, 0, sizeof(*view));
    if (q->remote) {
        void *data = NULL;
        size_t n = 0;
        if (remote_take(q, &data, &n, timeout_s, err) < 0)
            return -1;
        *view = (dv_queue_view_t){data, n, q, data, 0, 0};
        return 0;
    }
    struct take t = {.mode = TAKE_LEND};
    if (claim(q, timeout_s, &t, err) < 0)
        return -1;
    __atomic_fetch_add(&q->lent, 1, __ATOMIC_RELAXED);
    struct desc *d = desc_at(q, t.pos);
    *view = (dv_queue_view_t){
        (unsigned char *)d + DESC, (size_t)d->len, q, NULL, t.pos, t.tag};
    return 0;
}

/* Under the lock: is the message at pos lent by this process, through q,
 * under tag? */
static bool lent_here(dv_queue_t *q, uint64_t pos, uint64_t tag)
{
    const struct desc *d = desc_at(q, pos);
    return ld32(&d->state) == M_READING && d->pid == dv__self_pid() &&
           d->hid == q->hid && d->tag != 0 && (tag == 0 || d->tag == tag);
}

int dv_queue_lend_release(dv_queue_t *q, dv_queue_view_t *view, dv_error_t *err)
{
    if (!q || !view || view->q_ != q)
        return dv__errprintf(err, EINVAL, "queue: release: not a view of q");
    if (q->remote) {
        free(view->buf_);
        memset(view, 0, sizeof(*view));
        return 0;
    }
    if (view->tag_ == 0)
        return dv__errprintf(err, EINVAL, "queue: release: not a view of q");
    if (qlock(q) < 0)
        return dv__errsys(err, "queue: lock");
    bool mine = lent_here(q, view->pos_, view->tag_);
    bool freed = mine && done_locked(q, view->pos_);
    qunlock(q);
    if (!mine)
        return dv__errprintf(err, EINVAL,
                             "queue: release: view not held by this process "
                             "(released already?)");
    __atomic_fetch_sub(&q->lent, 1, __ATOMIC_RELAXED);
    memset(view, 0, sizeof(*view));
    if (freed)
        bump(&q->sh->space_seq, &q->sh->space_sleepers, INT_MAX);
    return 0;
}

/* dv_queue_destroy: give back the views this process still holds
 * through q. */
static void release_lent(dv_queue_t *q)
{
    if (__atomic_load_n(&q->lent, __ATOMIC_RELAXED) == 0 || qlock(q) < 0)
        return;
    struct qshared *sh = q->sh;
    for (uint64_t p = sh->rel; p != sh->head; p = desc_next(q, p))
        if (lent_here(q, p, 0))
            st32(&desc_at(q, p)->state, M_DONE);
    bool freed = sweep(q);
    qunlock(q);
    __atomic_store_n(&q->lent, 0, __ATOMIC_RELAXED);
    if (freed)
        bump(&sh->space_seq, &sh->space_sleepers, INT_MAX);
}

int dv__queue_get_with(dv_queue_t *q, double timeout_s,
                       int (*use)(void *ctx, const void *data, size_t len),
                       void *ctx, dv_error_t *err)
{
    if (q->remote)
        return dv__errprintf(err, EINVAL, "queue: not on this node");
    struct take t = {.mode = TAKE_PLACE};
    if (claim(q, timeout_s, &t, err) < 0)
        return -1;
    struct desc *d = desc_at(q, t.pos);
    int rc = use(ctx, (unsigned char *)d + DESC, (size_t)d->len);
    int saved = errno;
    release(q, t.pos);
    errno = saved;
    return rc;
}

size_t dv__queue_maxsize(const dv_queue_t *q)
{
    return q->remote ? 0 : (size_t)q->sh->maxsize;
}

int dv_queue_close(dv_queue_t *q)
{
    if (!q) {
        errno = EINVAL;
        return -1;
    }
    if (q->remote)
        return dv__remote_op(q->remote, DV_ROP_QUEUE_CLOSE, 0, NULL, 0, NULL,
                             NULL, NULL, NULL);
    dv__remote_fence();
    if (qlock(q) < 0)
        return -1;
    __atomic_store_n(&q->sh->closed, 1, __ATOMIC_RELAXED);
    qunlock(q);
    bump(&q->sh->space_seq, &q->sh->space_sleepers, INT_MAX);
    bump(&q->sh->data_seq, &q->sh->data_sleepers, INT_MAX);
    return 0;
}

long dv_queue_size(dv_queue_t *q)
{
    if (!q) {
        errno = EINVAL;
        return -1;
    }
    int32_t n = 0;
    if (q->remote)
        return dv__remote_op(q->remote, DV_ROP_QUEUE_SIZE, 0, NULL, 0, &n, NULL,
                             NULL, NULL) < 0
                   ? -1
                   : (long)n;
    return (long)__atomic_load_n(&q->sh->count, __ATOMIC_RELAXED);
}

int dv_queue_task_done(dv_queue_t *q, dv_error_t *err)
{
    if (!q)
        return dv__errprintf(err, EINVAL, "queue: task_done: NULL queue");
    if (q->remote)
        return dv__remote_op(q->remote, DV_ROP_QUEUE_TASK_DONE, 0, NULL, 0,
                             NULL, NULL, NULL, err);
    dv__remote_fence();
    if (finish_one(q) < 0)
        return dv__errprintf(err, ERANGE,
                             "queue: task_done() called more times than "
                             "messages were put");
    return 0;
}

int dv_queue_join(dv_queue_t *q, double timeout_s, dv_error_t *err)
{
    if (!q)
        return dv__errprintf(err, EINVAL, "queue: join: NULL queue");
    if (q->remote)
        return dv__remote_op(q->remote, DV_ROP_QUEUE_JOIN, timeout_s, NULL, 0,
                             NULL, NULL, NULL, err);
    struct qshared *sh = q->sh;
    struct timespec dl;
    bool has_dl = dv__deadline(timeout_s, &dl);
    for (;;) {
        uint32_t seq = ld32(&sh->done_seq);
        if (__atomic_load_n(&sh->unfinished, __ATOMIC_SEQ_CST) == 0)
            return 0;
        if (timeout_s == 0 || (has_dl && dv__deadline_passed(&dl)))
            return dv__errprintf(err, ETIMEDOUT, "queue: join timed out");
        wait_seq(&sh->done_seq, &sh->done_sleepers, seq, has_dl ? &dl : NULL,
                 false);
    }
}

int dv_queue_wait(dv_queue_t *q, double timeout_s, dv_error_t *err)
{
    if (!q)
        return dv__errprintf(err, EINVAL, "queue: wait: NULL queue");
    if (q->remote)
        return dv__remote_op(q->remote, DV_ROP_QUEUE_WAIT, timeout_s, NULL, 0,
                             NULL, NULL, NULL, err);
    struct qshared *sh = q->sh;
    struct timespec dl;
    bool has_dl = dv__deadline(timeout_s, &dl);
    for (;;) {
        uint32_t seq = ld32(&sh->data_seq);
        if (__atomic_load_n(&sh->count, __ATOMIC_RELAXED) > 0) {
            /* The wake that brought us may have been meant for a consumer:
             * pass it on (one wake per publish). */
            bump(&sh->data_seq, &sh->data_sleepers, 1);
            return 0;
        }
        if (__atomic_load_n(&sh->closed, __ATOMIC_RELAXED))
            return 0;
        if (timeout_s == 0 || (has_dl && dv__deadline_passed(&dl)))
            return dv__errprintf(err, timeout_s == 0 ? EAGAIN : ETIMEDOUT,
                                 "queue: empty");
        wait_seq(&sh->data_seq, &sh->data_sleepers, seq, has_dl ? &dl : NULL,
                 false);
    }
}

long dv_queue_unfinished(dv_queue_t *q)
{
    if (!q) {
        errno = EINVAL;
        return -1;
    }
    int32_t n = 0;
    if (q->remote)
        return dv__remote_op(q->remote, DV_ROP_QUEUE_UNFINISHED, 0, NULL, 0, &n,
                             NULL, NULL, NULL) < 0
                   ? -1
                   : (long)n;
    uint64_t u = __atomic_load_n(&q->sh->unfinished, __ATOMIC_SEQ_CST);
    return u > LONG_MAX ? LONG_MAX : (long)u;
}

int dv_queue_hold(dv_queue_t *q)
{
    if (!q) {
        errno = EINVAL;
        return -1;
    }
    if (q->remote)
        return dv__remote_op(q->remote, DV_ROP_QUEUE_HOLD, 0, NULL, 0, NULL,
                             NULL, NULL, NULL);
    uint32_t n = __atomic_load_n(&q->sh->holders, __ATOMIC_SEQ_CST);
    do {
        if (n == UINT32_MAX) {
            errno = EOVERFLOW;
            return -1;
        }
    } while (!__atomic_compare_exchange_n(&q->sh->holders, &n, n + 1, false,
                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    return 0;
}

int dv_queue_release(dv_queue_t *q)
{
    if (!q) {
        errno = EINVAL;
        return -1;
    }
    if (q->remote)
        return dv__remote_op(q->remote, DV_ROP_QUEUE_RELEASE, 0, NULL, 0, NULL,
                             NULL, NULL, NULL);
    uint32_t n = __atomic_load_n(&q->sh->holders, __ATOMIC_SEQ_CST);
    do {
        if (n == 0) {
            errno = ERANGE;
            return -1;
        }
    } while (!__atomic_compare_exchange_n(&q->sh->holders, &n, n - 1, false,
                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    return n == 1 ? dv_queue_close(q) : 0;
}

static void bind_mapping(dv_queue_t *q)
{
    q->sh = (struct qshared *)q->shm.hdr;
    q->heap = (unsigned char *)q->shm.hdr + q->sh->heap_off;
    q->mask = q->sh->heap_cap - 1;
    do /* 0 marks claims that are not lends */
        q->hid = __atomic_add_fetch(&q->sh->next_hid, 1, __ATOMIC_RELAXED);
    while (q->hid == 0);
}

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

dv_queue_t *dv_queue_create(size_t maxsize, dv_error_t *err)
{
    size_t off = (sizeof(struct qshared) + 4095) & ~(size_t)4095;
    dv_queue_t *q = calloc(1, sizeof(*q));
    if (!q) {
        dv__errprintf(err, ENOMEM, "queue: out of memory");
        return NULL;
    }
    if (dv__shm_create(&q->shm, DV__SHM_QUEUE, 'q', off + QUEUE_HEAP, err) <
        0) {
        free(q);
        return NULL;
    }
    struct qshared *sh = (struct qshared *)q->shm.hdr;
    sh->maxsize = maxsize;
    sh->heap_off = off;
    sh->heap_cap = QUEUE_HEAP;
    sh->early_min = EARLY_MIN;
    int r = init_lock(&sh->lock);
    if (r != 0) {
        dv__errprintf(err, r, "queue: process-shared mutex: %s", strerror(r));
        dv_queue_destroy(&q);
        errno = r;
        return NULL;
    }
    __atomic_store_n(&sh->common.magic, DV__SHM_MAGIC, __ATOMIC_RELEASE);
    bind_mapping(q);
    return q;
}

int dv_queue_handle(const dv_queue_t *q, dv_handle_t *out)
{
    if (!q || !out) {
        errno = EINVAL;
        return -1;
    }
    if (q->remote) {
        *out = q->remote_handle;
        return 0;
    }
    dv__shm_handle(&q->shm, out);
    return 0;
}

dv_queue_t *dv_queue_attach(const dv_handle_t *h, dv_error_t *err)
{
    dv_queue_t *q = calloc(1, sizeof(*q));
    if (!q) {
        dv__errprintf(err, ENOMEM, "queue: out of memory");
        return NULL;
    }
    int home = dv__remote_home(h);
    if (home >= 0) {
        q->remote = dv__remote_open(h, home, err);
        q->remote_handle = *h;
        q->shm.fd = -1;
        if (q->remote) {
            pthread_mutex_init(&q->stash_lock, NULL);
            return q;
        }
        free(q);
        return NULL;
    }
    if (dv__shm_attach(&q->shm, h, DV__SHM_QUEUE, err) < 0) {
        free(q);
        return NULL;
    }
    const struct qshared *sh = (const struct qshared *)q->shm.hdr;
    if (q->shm.size < sizeof(*sh) || sh->heap_cap == 0 ||
        (sh->heap_cap & (sh->heap_cap - 1)) ||
        sh->heap_off + sh->heap_cap != q->shm.size) {
        dv__errprintf(err, EINVAL, "queue: handle: not a queue");
        dv_queue_destroy(&q);
        errno = EINVAL;
        return NULL;
    }
    bind_mapping(q);
    return q;
}

void dv_queue_destroy(dv_queue_t **qp)
{
    if (!qp || !*qp)
        return;
    int saved = errno;
    dv_queue_t *q = *qp;
    if (q->remote) {
        dv__remote_close(&q->remote);
        pthread_mutex_destroy(&q->stash_lock);
        free(q->stash);
        free(q);
        *qp = NULL;
        errno = saved;
        return;
    }
    if (q->shm.hdr && q->sh)
        release_lent(q);
    if (q->shm.hdr && q->shm.owner == getpid() && q->sh)
        dv_queue_close(q);
    dv__shm_release(&q->shm);
    free(q);
    *qp = NULL;
    errno = saved;
}
