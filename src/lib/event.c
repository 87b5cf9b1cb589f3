/* Events: one flag in a small shared-memory segment, waited on with a
 * futex after a short spin. No lock is involved, so a process killed at
 * any point leaves the event usable; set wakes sleepers only when a
 * sleeper count says there are some. */
#include "drover/event.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "common/error.h"
#include "lib/remote.h"
#include "lib/shm.h"

#define EVENT_SEGMENT 4096

struct eshared {
    struct dv__shm_hdr common;
    _Alignas(64) uint32_t flag; /* 0 clear, 1 set; the futex word */
    uint32_t sleepers;
};

struct dv_event {
    dv__remote_t *remote; /* the event lives on another node (remote.c) */
    dv_handle_t remote_handle;
    struct dv__shm shm;
    struct eshared *sh;
};

dv_event_t *dv_event_create(dv_error_t *err)
{
    dv_event_t *e = calloc(1, sizeof(*e));
    if (!e) {
        dv__errprintf(err, ENOMEM, "event: out of memory");
        return NULL;
    }
    if (dv__shm_create(&e->shm, DV__SHM_EVENT, 'e', EVENT_SEGMENT, err) < 0) {
        free(e);
        return NULL;
    }
    e->sh = (struct eshared *)e->shm.hdr;
    __atomic_store_n(&e->sh->common.magic, DV__SHM_MAGIC, __ATOMIC_RELEASE);
    return e;
}

int dv_event_set(dv_event_t *e)
{
    if (!e) {
        errno = EINVAL;
        return -1;
    }
    if (e->remote)
        return dv__remote_op(e->remote, DV_ROP_EVENT_SET, 0, NULL, 0, NULL,
                             NULL, NULL, NULL);
    dv__remote_fence();
    __atomic_store_n(&e->sh->flag, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&e->sh->sleepers, __ATOMIC_SEQ_CST) != 0)
        dv__futex_wake(&e->sh->flag, INT_MAX);
    return 0;
}

int dv_event_clear(dv_event_t *e)
{
    if (!e) {
        errno = EINVAL;
        return -1;
    }
    if (e->remote)
        return dv__remote_op(e->remote, DV_ROP_EVENT_CLEAR, 0, NULL, 0, NULL,
                             NULL, NULL, NULL);
    dv__remote_fence();
    __atomic_store_n(&e->sh->flag, 0, __ATOMIC_SEQ_CST);
    return 0;
}

bool dv_event_is_set(dv_event_t *e)
{
    int32_t v = 0;
    if (e && e->remote)
        return dv__remote_op(e->remote, DV_ROP_EVENT_IS_SET, 0, NULL, 0, &v,
                             NULL, NULL, NULL) == 0 &&
               v;
    return e && __atomic_load_n(&e->sh->flag, __ATOMIC_ACQUIRE) != 0;
}

int dv_event_wait(dv_event_t *e, double timeout_s, dv_error_t *err)
{
    if (!e)
        return dv__errprintf(err, EINVAL, "event: wait: NULL event");
    if (e->remote)
        return dv__remote_op(e->remote, DV_ROP_EVENT_WAIT, timeout_s, NULL, 0,
                             NULL, NULL, NULL, err);
    uint32_t *flag = &e->sh->flag;
    if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
        return 0;
    if (timeout_s != 0 && dv__spin_while(flag, 0))
        return 0;
    struct timespec dl;
    bool has_dl = dv__deadline(timeout_s, &dl);
    while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
        if (timeout_s == 0 || (has_dl && dv__deadline_passed(&dl)))
            return dv__errprintf(err, ETIMEDOUT, "event: wait timed out");
        __atomic_fetch_add(&e->sh->sleepers, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(flag, __ATOMIC_SEQ_CST) == 0)
            dv__futex_wait(flag, 0, has_dl ? &dl : NULL);
        __atomic_fetch_sub(&e->sh->sleepers, 1, __ATOMIC_SEQ_CST);
    }
    return 0;
}

int dv_event_handle(const dv_event_t *e, dv_handle_t *out)
{
    if (!e || !out) {
        errno = EINVAL;
        return -1;
    }
    if (e->remote) {
        *out = e->remote_handle;
        return 0;
    }
    dv__shm_handle(&e->shm, out);
    return 0;
}

dv_event_t *dv_event_attach(const dv_handle_t *h, dv_error_t *err)
{
    dv_event_t *e = calloc(1, sizeof(*e));
    if (!e) {
        dv__errprintf(err, ENOMEM, "event: out of memory");
        return NULL;
    }
    int home = dv__remote_home(h);
    if (home >= 0) {
        e->remote = dv__remote_open(h, home, err);
        e->remote_handle = *h;
        e->shm.fd = -1;
        if (e->remote)
            return e;
        free(e);
        return NULL;
    }
    if (dv__shm_attach(&e->shm, h, DV__SHM_EVENT, err) < 0) {
        free(e);
        return NULL;
    }
    if (e->shm.size < sizeof(struct eshared)) {
        dv__errprintf(err, EINVAL, "event: handle: not an event");
        dv_event_destroy(&e);
        errno = EINVAL;
        return NULL;
    }
    e->sh = (struct eshared *)e->shm.hdr;
    return e;
}

void dv_event_destroy(dv_event_t **ep)
{
    if (!ep || !*ep)
        return;
    int saved = errno;
    dv__remote_close(&(*ep)->remote);
    dv__shm_release(&(*ep)->shm);
    free(*ep);
    *ep = NULL;
    errno = saved;
}
