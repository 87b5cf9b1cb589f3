/* Barriers, as threading.Barrier, in a small shared-memory segment: a
 * robust process-shared mutex over the state, and a futex word (seq)
 * bumped at every change that a waiter may be waiting for.
 *
 * Callers arrive in a generation (gen); the last to arrive ends it, and
 * the next arrivals start the next one, so a caller never waits for the
 * others to leave. A generation ends passed (all arrived) or broken
 * (abort, reset, a timeout, a failed action); `broke` keeps the outcomes
 * of the last 64 generations, so that a waiter that wakes late still
 * learns how its own one ended. A generation can be held open by its
 * last arrival (hold), which runs the action and then passes it; a
 * caller that arrives meanwhile waits for the next one.
 *
 * A process killed while holding the mutex leaves it EOWNERDEAD: the next
 * locker breaks the barrier (its state may be half changed), and those
 * waiting get EPIPE. One killed while waiting leaves its place taken (as
 * with multiprocessing's Barrier). */
#include "drover/sync.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "lib/remote.h"
#include "lib/shm.h"

#define BARRIER_SEGMENT 4096
#define LOST_WAKE_MS 2000

struct bshared {
    struct dv__shm_hdr common;
    uint32_t parties; /* set at create, then read only */
    _Alignas(64) pthread_mutex_t lock;
    /* Under the lock. */
    uint32_t gen;              /* the open generation */
    uint32_t count;            /* arrived in it */
    uint32_t broken;           /* until a reset */
    uint32_t held;             /* its last arrival holds it */
    uint64_t broke;            /* bit i: generation gen - 1 - i ended broken */
    _Alignas(64) uint32_t seq; /* futex word */
    uint32_t sleepers;
};

_Static_assert(sizeof(struct bshared) <= DV__SHM_HEAD, "barrier header size");

struct dv_barrier {
    dv__remote_t *remote; /* the barrier lives on another node */
    dv_handle_t remote_handle;
    struct dv__shm shm;
    struct bshared *sh;
};

dv_barrier_t *dv_barrier_create(uint32_t parties, dv_error_t *err)
{
    if (parties < 1 || parties > DV_BARRIER_PARTIES_MAX) {
        dv__errprintf(err, EINVAL, "barrier: %u parties (1 to %d)", parties,
                      DV_BARRIER_PARTIES_MAX);
        return NULL;
    }
    dv_barrier_t *b = calloc(1, sizeof(*b));
    if (!b) {
        dv__errprintf(err, ENOMEM, "barrier: out of memory");
        return NULL;
    }
    if (dv__shm_create(&b->shm, DV__SHM_BARRIER, 'b', BARRIER_SEGMENT, err) <
        0) {
        free(b);
        return NULL;
    }
    struct bshared *sh = (struct bshared *)b->shm.hdr;
    b->sh = sh;
    sh->parties = parties;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int r = pthread_mutex_init(&sh->lock, &a);
    pthread_mutexattr_destroy(&a);
    if (r != 0) {
        dv__errprintf(err, r, "barrier: mutex: %s", strerror(r));
        dv_barrier_destroy(&b);
        errno = r;
        return NULL;
    }
    __atomic_store_n(&sh->common.magic, DV__SHM_MAGIC, __ATOMIC_RELEASE);
    return b;
}

/* Under the lock: a change waiters look for. */
static void bump(struct bshared *sh)
{
    __atomic_fetch_add(&sh->seq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&sh->sleepers, __ATOMIC_SEQ_CST) != 0)
        dv__futex_wake(&sh->seq, INT_MAX);
}

/* Under the lock: end the open generation, passed or broken. */
static void end_gen(struct bshared *sh, bool broken)
{
    sh->broke = sh->broke << 1 | (broken ? 1u : 0u);
    sh->gen++;
    sh->count = 0;
    sh->held = 0;
    bump(sh);
}

/* Under the lock: break it (and the open generation if anyone is in). */
static void break_it(struct bshared *sh)
{
    sh->broken = 1;
    if (sh->count > 0)
        end_gen(sh, true);
    else
        bump(sh);
}

static int block(dv_barrier_t *b, dv_error_t *err)
{
    int r = pthread_mutex_lock(&b->sh->lock);
    if (r == EOWNERDEAD) {
        break_it(b->sh); /* its state may be half changed */
        r = pthread_mutex_consistent(&b->sh->lock);
    }
    if (r != 0)
        return dv__errprintf(err, r == ENOTRECOVERABLE ? EIO : r,
                             "barrier: lock: %s", strerror(r));
    return 0;
}

static void bunlock(dv_barrier_t *b)
{
    pthread_mutex_unlock(&b->sh->lock);
}

/* Sleep until seq moves from old, dl (NULL: none) or LOST_WAKE_MS. */
static void wait_seq(struct bshared *sh, uint32_t old,
                     const struct timespec *dl)
{
    if (dv__spin_while(&sh->seq, old))
        return;
    struct timespec t = dv__deadline_min(dl, LOST_WAKE_MS);
    __atomic_fetch_add(&sh->sleepers, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&sh->seq, __ATOMIC_SEQ_CST) == old)
        dv__futex_wait(&sh->seq, old, &t);
    __atomic_fetch_sub(&sh->sleepers, 1, __ATOMIC_SEQ_CST);
}

/* Under the lock: how generation g ended: 0 passed, 1 broken, -1 open.
 * One that ended over 64 generations ago passed (a broken one is only
 * followed by others after a reset, and then by many passes). */
static int outcome(const struct bshared *sh, uint32_t g)
{
    if (g == sh->gen)
        return -1;
    uint32_t back = sh->gen - 1 - g;
    return back < 64 && (sh->broke >> back & 1) ? 1 : 0;
}

static int broken_error(dv_error_t *err)
{
    return dv__errprintf(err, EPIPE, "barrier: broken");
}

/* Under the lock: take a place in the open generation. */
static int take_place(struct bshared *sh, bool hold, dv_barrier_ticket_t *t)
{
    t->gen = sh->gen;
    t->index = (int32_t)sh->count++;
    if (sh->count < sh->parties)
        return t->index;
    if (hold)
        sh->held = 1;
    else
        end_gen(sh, false);
    return t->index;
}

/* Under the lock, released on return: wait for a change or the deadline,
 * and take the lock again. -1 when that failed (not held then). */
static int relock_after_change(dv_barrier_t *b, const struct timespec *dl,
                               dv_error_t *err)
{
    uint32_t seq = __atomic_load_n(&b->sh->seq, __ATOMIC_SEQ_CST);
    bunlock(b);
    wait_seq(b->sh, seq, dl);
    return block(b, err);
}

/* ---- a barrier of another node ---- */

static int remote_ticket_op(dv_barrier_t *b, int op, double timeout_s,
                            const dv_barrier_ticket_t *t, dv_error_t *err)
{
    unsigned char in[8];
    memcpy(in, &t->gen, 4);
    memcpy(in + 4, &t->index, 4);
    return dv__remote_op(b->remote, op, timeout_s, in, sizeof(in), NULL, NULL,
                         NULL, err);
}

static int remote_arrive(dv_barrier_t *b, bool hold, double timeout_s,
                         dv_barrier_ticket_t *t, dv_error_t *err)
{
    unsigned char in = hold ? 1 : 0;
    int32_t index = -1;
    void *out = NULL;
    size_t len = 0;
    if (dv__remote_op(b->remote, DV_ROP_BARRIER_ARRIVE, timeout_s, &in, 1,
                      &index, &out, &len, err) < 0)
        return -1;
    int ok = len == sizeof(t->gen) && index >= 0;
    if (ok) {
        memcpy(&t->gen, out, sizeof(t->gen));
        t->index = index;
    }
    free(out);
    if (!ok)
        return dv__errprintf(err, EPROTO, "barrier: arrive: bad answer");
    return index;
}

/* The home node's n_waiting, parties and broken of a relay. */
static int remote_state(dv_barrier_t *b, int32_t st[3], dv_error_t *err)
{
    void *out = NULL;
    size_t len = 0;
    if (dv__remote_op(b->remote, DV_ROP_BARRIER_STATE, 0, NULL, 0, &st[0], &out,
                      &len, err) < 0)
        return -1;
    int ok = len == 2 * sizeof(int32_t);
    if (ok)
        memcpy(&st[1], out, len);
    free(out);
    if (!ok)
        return dv__errprintf(err, EPROTO, "barrier: bad answer");
    return 0;
}

int dv_barrier_arrive(dv_barrier_t *b, bool hold, double timeout_s,
                      dv_barrier_ticket_t *t, dv_error_t *err)
{
    if (!b || !t)
        return dv__errprintf(err, EINVAL, "barrier: arrive: NULL");
    if (b->remote)
        return remote_arrive(b, hold, timeout_s, t, err);
    dv__remote_fence();
    struct timespec dl;
    bool has_dl = dv__deadline(timeout_s, &dl);
    if (block(b, err) < 0)
        return -1;
    struct bshared *sh = b->sh;
    for (;;) {
        if (sh->broken) {
            bunlock(b);
            return broken_error(err);
        }
        if (!sh->held)
            break;
        if (timeout_s == 0 || (has_dl && dv__deadline_passed(&dl))) {
            bunlock(b);
            return dv__errprintf(err, ETIMEDOUT, "barrier: held");
        }
        if (relock_after_change(b, has_dl ? &dl : NULL, err) < 0)
            return -1;
    }
    int index = take_place(sh, hold, t);
    bunlock(b);
    return index;
}

int dv_barrier_await(dv_barrier_t *b, const dv_barrier_ticket_t *t,
                     double timeout_s, dv_error_t *err)
{
    if (!b || !t)
        return dv__errprintf(err, EINVAL, "barrier: await: NULL");
    if (b->remote)
        return remote_ticket_op(b, DV_ROP_BARRIER_AWAIT, timeout_s, t, err);
    struct timespec dl;
    bool has_dl = dv__deadline(timeout_s, &dl);
    if (block(b, err) < 0)
        return -1;
    int o;
    while ((o = outcome(b->sh, t->gen)) < 0) {
        if (timeout_s == 0 || (has_dl && dv__deadline_passed(&dl))) {
            bunlock(b);
            return dv__errprintf(err, ETIMEDOUT, "barrier: wait timed out");
        }
        if (relock_after_change(b, has_dl ? &dl : NULL, err) < 0)
            return -1;
    }
    bunlock(b);
    return o ? broken_error(err) : 0;
}

int dv_barrier_give_up(dv_barrier_t *b, const dv_barrier_ticket_t *t,
                       dv_error_t *err)
{
    if (!b || !t)
        return dv__errprintf(err, EINVAL, "barrier: give up: NULL");
    if (b->remote)
        return remote_ticket_op(b, DV_ROP_BARRIER_GIVE_UP, 0, t, err);
    dv__remote_fence();
    if (block(b, err) < 0)
        return -1;
    struct bshared *sh = b->sh;
    int o = outcome(sh, t->gen), rc = 0;
    if (o < 0 && sh->held)
        rc = dv__errprintf(err, EAGAIN, "barrier: held by its last arrival");
    else if (o < 0)
        rc = dv__errprintf(err, ETIMEDOUT, "barrier: wait timed out");
    if (o < 0 && !sh->held)
        break_it(sh);
    bunlock(b);
    return o > 0 ? broken_error(err) : rc;
}

int dv_barrier_pass(dv_barrier_t *b, const dv_barrier_ticket_t *t,
                    dv_error_t *err)
{
    if (!b || !t)
        return dv__errprintf(err, EINVAL, "barrier: pass: NULL");
    if (b->remote)
        return remote_ticket_op(b, DV_ROP_BARRIER_PASS, 0, t, err);
    dv__remote_fence();
    if (block(b, err) < 0)
        return -1;
    struct bshared *sh = b->sh;
    int o = outcome(sh, t->gen), rc = 0;
    if (o > 0)
        rc = broken_error(err);
    else if (o == 0 || !sh->held || t->index != (int32_t)sh->parties - 1)
        rc = dv__errprintf(err, EINVAL, "barrier: pass: not its holder");
    else
        end_gen(sh, false);
    bunlock(b);
    return rc;
}

/* Run fn on the barrier under its lock (abort, reset). */
static int locked(dv_barrier_t *b, void (*fn)(struct bshared *),
                  dv_error_t *err)
{
    if (block(b, err) < 0)
        return -1;
    fn(b->sh);
    bunlock(b);
    return 0;
}

static void do_reset(struct bshared *sh)
{
    if (sh->count > 0)
        end_gen(sh, true);
    sh->broken = 0;
    bump(sh);
}

int dv_barrier_abort(dv_barrier_t *b, dv_error_t *err)
{
    if (!b)
        return dv__errprintf(err, EINVAL, "barrier: abort: NULL");
    if (b->remote)
        return dv__remote_op(b->remote, DV_ROP_BARRIER_ABORT, 0, NULL, 0, NULL,
                             NULL, NULL, err);
    dv__remote_fence();
    return locked(b, break_it, err);
}

int dv_barrier_reset(dv_barrier_t *b, dv_error_t *err)
{
    if (!b)
        return dv__errprintf(err, EINVAL, "barrier: reset: NULL");
    if (b->remote)
        return dv__remote_op(b->remote, DV_ROP_BARRIER_RESET, 0, NULL, 0, NULL,
                             NULL, NULL, err);
    dv__remote_fence();
    return locked(b, do_reset, err);
}

/* n_waiting, parties, broken. */
static int state(dv_barrier_t *b, int32_t st[3], dv_error_t *err)
{
    if (!b)
        return dv__errprintf(err, EINVAL, "barrier: NULL");
    if (b->remote)
        return remote_state(b, st, err);
    if (block(b, err) < 0)
        return -1;
    struct bshared *sh = b->sh;
    st[0] = (int32_t)(sh->count - (sh->held ? 1 : 0));
    st[1] = (int32_t)sh->parties;
    st[2] = sh->broken != 0;
    bunlock(b);
    return 0;
}

int dv_barrier_n_waiting(dv_barrier_t *b, dv_error_t *err)
{
    int32_t st[3];
    return state(b, st, err) < 0 ? -1 : st[0];
}

int dv_barrier_parties(dv_barrier_t *b, dv_error_t *err)
{
    int32_t st[3];
    if (b && !b->remote)
        return (int)b->sh->parties;
    return state(b, st, err) < 0 ? -1 : st[1];
}

int dv_barrier_broken(dv_barrier_t *b, dv_error_t *err)
{
    int32_t st[3];
    return state(b, st, err) < 0 ? -1 : st[2];
}

/* The last arrival's action, then the pass; a failed action breaks it. */
static int run_action(dv_barrier_t *b, const dv_barrier_ticket_t *t,
                      dv_barrier_action_f action, void *ctx, dv_error_t *err)
{
    if (action(ctx) < 0) {
        int e = errno ? errno : EIO;
        dv_barrier_abort(b, NULL);
        return dv__errprintf(err, e, "barrier: the action failed");
    }
    return dv_barrier_pass(b, t, err);
}

int dv_barrier_wait(dv_barrier_t *b, double timeout_s,
                    dv_barrier_action_f action, void *ctx, dv_error_t *err)
{
    dv_barrier_ticket_t t;
    struct timespec dl;
    bool has_dl = dv__deadline(timeout_s, &dl);
    int index = dv_barrier_arrive(b, action != NULL, timeout_s, &t, err);
    if (index < 0)
        return -1;
    if (b && index == dv_barrier_parties(b, NULL) - 1)
        return action && run_action(b, &t, action, ctx, err) < 0 ? -1 : index;
    for (;;) {
        double left = -1;
        if (has_dl) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            left = (double)(dl.tv_sec - now.tv_sec) +
                   (double)(dl.tv_nsec - now.tv_nsec) * 1e-9;
            left = left > 0 ? left : 0;
        }
        if (dv_barrier_await(b, &t, left, err) == 0)
            return index;
        if (errno != ETIMEDOUT)
            return -1;
        int r = dv_barrier_give_up(b, &t, err);
        if (r == 0)
            return index;
        if (errno != EAGAIN)
            return -1;
        has_dl = false; /* held: its holder runs the action */
    }
}

int dv_barrier_handle(const dv_barrier_t *b, dv_handle_t *out)
{
    if (!b || !out) {
        errno = EINVAL;
        return -1;
    }
    if (b->remote)
        *out = b->remote_handle;
    else
        dv__shm_handle(&b->shm, out);
    return 0;
}

dv_barrier_t *dv_barrier_attach(const dv_handle_t *h, dv_error_t *err)
{
    dv_barrier_t *b = calloc(1, sizeof(*b));
    if (!b) {
        dv__errprintf(err, ENOMEM, "barrier: out of memory");
        return NULL;
    }
    b->shm.fd = -1;
    int home = h ? dv__remote_home(h) : -1;
    if (home >= 0) {
        b->remote_handle = *h;
        if ((b->remote = dv__remote_open(h, home, err)))
            return b;
        free(b);
        return NULL;
    }
    if (dv__shm_attach(&b->shm, h, DV__SHM_BARRIER, err) < 0) {
        free(b);
        return NULL;
    }
    b->sh = (struct bshared *)b->shm.hdr;
    if (b->shm.size < sizeof(struct bshared) || b->sh->parties < 1 ||
        b->sh->parties > DV_BARRIER_PARTIES_MAX) {
        dv__errprintf(err, EINVAL, "barrier: handle: not a barrier");
        dv_barrier_destroy(&b);
        errno = EINVAL;
        return NULL;
    }
    return b;
}

void dv_barrier_destroy(dv_barrier_t **bp)
{
    if (!bp || !*bp)
        return;
    int saved = errno;
    dv__remote_close(&(*bp)->remote);
    dv__shm_release(&(*bp)->shm);
    free(*bp);
    *bp = NULL;
    errno = saved;
}
