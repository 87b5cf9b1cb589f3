/* Semaphores with a maximum value: one counter in a small shared-memory
 * segment, changed only by compare-and-swap, and waited on with a futex
 * on the counter itself after a short spin. There is no lock, so a
 * process killed at any point leaves the semaphore consistent (a unit it
 * had taken stays taken, as with multiprocessing's). A release wakes one
 * sleeper when a sleeper count says there is one; a sleeper killed
 * between that wake and its take carries the wake away with it, so
 * sleepers also look again every LOST_WAKE_MS. */
#include "drover/sync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "lib/remote.h"
#include "lib/shm.h"

#define SEM_SEGMENT 4096
#define LOST_WAKE_MS 2000 /* the longest sleep between two looks */

struct sshared {
    struct dv__shm_hdr common;
    uint32_t max;                /* set at create, then read only */
    _Alignas(64) uint32_t value; /* units free; the futex word */
    uint32_t sleepers;
};

struct dv_sem {
    dv__remote_t *remote; /* the semaphore lives on another node */
    dv_handle_t remote_handle;
    struct dv__shm shm;
    struct sshared *sh;
};

dv_sem_t *dv_sem_create(uint32_t value, uint32_t max, dv_error_t *err)
{
    if (max < 1 || max > DV_SEM_VALUE_MAX || value > max) {
        dv__errprintf(err, EINVAL,
                      "semaphore: value %u and maximum %u (1 <= maximum <= "
                      "%u, value <= maximum)",
                      value, max, DV_SEM_VALUE_MAX);
        return NULL;
    }
    dv_sem_t *s = calloc(1, sizeof(*s));
    if (!s) {
        dv__errprintf(err, ENOMEM, "semaphore: out of memory");
        return NULL;
    }
    if (dv__shm_create(&s->shm, DV__SHM_SEM, 's', SEM_SEGMENT, err) < 0) {
        free(s);
        return NULL;
    }
    s->sh = (struct sshared *)s->shm.hdr;
    s->sh->max = max;
    s->sh->value = value;
    __atomic_store_n(&s->sh->common.magic, DV__SHM_MAGIC, __ATOMIC_RELEASE);
    return s;
}

/* Take a unit if there is one. */
static bool try_take(struct sshared *sh)
{
    uint32_t v = __atomic_load_n(&sh->value, __ATOMIC_ACQUIRE);
    while (v > 0) {
        if (__atomic_compare_exchange_n(&sh->value, &v, v - 1, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return true;
    }
    return false;
}

/* Sleep while the value is 0, until dl (NULL: none) or LOST_WAKE_MS. */
static void sleep_empty(struct sshared *sh, const struct timespec *dl)
{
    struct timespec t = dv__deadline_min(dl, LOST_WAKE_MS);
    __atomic_fetch_add(&sh->sleepers, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&sh->value, __ATOMIC_SEQ_CST) == 0)
        dv__futex_wait(&sh->value, 0, &t);
    __atomic_fetch_sub(&sh->sleepers, 1, __ATOMIC_SEQ_CST);
}

int dv_sem_acquire(dv_sem_t *s, double timeout_s, dv_error_t *err)
{
    if (!s)
        return dv__errprintf(err, EINVAL, "semaphore: acquire: NULL");
    if (s->remote)
        return dv__remote_op(s->remote, DV_ROP_SEM_ACQUIRE, timeout_s, NULL, 0,
                             NULL, NULL, NULL, err);
    struct sshared *sh = s->sh;
    if (try_take(sh))
        return 0;
    if (timeout_s == 0)
        return dv__errprintf(err, ETIMEDOUT, "semaphore: acquire timed out");
    struct timespec dl;
    bool has_dl = dv__deadline(timeout_s, &dl);
    bool spun = false;
    for (;;) {
        if (!spun) {
            spun = true;
            dv__spin_while(&sh->value, 0);
        } else {
            sleep_empty(sh, has_dl ? &dl : NULL);
        }
        if (try_take(sh))
            return 0;
        if (has_dl && dv__deadline_passed(&dl))
            return dv__errprintf(err, ETIMEDOUT,
                                 "semaphore: acquire timed out");
    }
}

int dv_sem_release(dv_sem_t *s, dv_error_t *err)
{
    if (!s)
        return dv__errprintf(err, EINVAL, "semaphore: release: NULL");
    if (s->remote)
        return dv__remote_op(s->remote, DV_ROP_SEM_RELEASE, 0, NULL, 0, NULL,
                             NULL, NULL, err);
    dv__remote_fence();
    struct sshared *sh = s->sh;
    uint32_t v = __atomic_load_n(&sh->value, __ATOMIC_ACQUIRE);
    do {
        if (v >= sh->max)
            return dv__errprintf(err, EOVERFLOW,
                                 "semaphore or lock released too many times");
    } while (!__atomic_compare_exchange_n(&sh->value, &v, v + 1, false,
                                          __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
    if (__atomic_load_n(&sh->sleepers, __ATOMIC_SEQ_CST) != 0)
        dv__futex_wake(&sh->value, 1);
    return 0;
}

/* The home node's value and maximum of a relay. */
static int remote_value(dv_sem_t *s, int32_t *value, uint32_t *max,
                        dv_error_t *err)
{
    void *out = NULL;
    size_t len = 0;
    if (dv__remote_op(s->remote, DV_ROP_SEM_VALUE, 0, NULL, 0, value, &out,
                      &len, err) < 0)
        return -1;
    int ok = len == sizeof(*max);
    if (ok)
        memcpy(max, out, sizeof(*max));
    free(out);
    if (!ok)
        return dv__errprintf(err, EPROTO, "semaphore: bad answer");
    return 0;
}

int64_t dv_sem_value(dv_sem_t *s, dv_error_t *err)
{
    if (!s)
        return dv__errprintf(err, EINVAL, "semaphore: value: NULL");
    if (s->remote) {
        int32_t v = 0;
        uint32_t max = 0; /* set on success (GCC -O3 cannot tell) */
        return remote_value(s, &v, &max, err) < 0 ? -1 : v;
    }
    return __atomic_load_n(&s->sh->value, __ATOMIC_ACQUIRE);
}

int64_t dv_sem_max(dv_sem_t *s, dv_error_t *err)
{
    if (!s)
        return dv__errprintf(err, EINVAL, "semaphore: max: NULL");
    if (s->remote) {
        int32_t v = 0;
        uint32_t max = 0; /* set on success (GCC -O3 cannot tell) */
        return remote_value(s, &v, &max, err) < 0 ? -1 : (int64_t)max;
    }
    return s->sh->max;
}

int dv_sem_handle(const dv_sem_t *s, dv_handle_t *out)
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

dv_sem_t *dv_sem_attach(const dv_handle_t *h, dv_error_t *err)
{
    dv_sem_t *s = calloc(1, sizeof(*s));
    if (!s) {
        dv__errprintf(err, ENOMEM, "semaphore: out of memory");
        return NULL;
    }
    s->shm.fd = -1;
    int home = h ? dv__remote_home(h) : -1;
    if (home >= 0) {
        s->remote_handle = *h;
        if ((s->remote = dv__remote_open(h, home, err)))
            return s;
        free(s);
        return NULL;
    }
    if (dv__shm_attach(&s->shm, h, DV__SHM_SEM, err) < 0) {
        free(s);
        return NULL;
    }
    s->sh = (struct sshared *)s->shm.hdr;
    if (s->shm.size < sizeof(struct sshared) || s->sh->max < 1 ||
        s->sh->max > DV_SEM_VALUE_MAX) {
        dv__errprintf(err, EINVAL, "semaphore: handle: not a semaphore");
        dv_sem_destroy(&s);
        errno = EINVAL;
        return NULL;
    }
    return s;
}

void dv_sem_destroy(dv_sem_t **sp)
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
