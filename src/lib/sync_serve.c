/* The home node's side of semaphores and barriers used from other nodes
 * (remote_serve.c attaches the object and calls here): decode the op's
 * bytes, run it on the object, encode its answer. Blocking ops run for at
 * most timeout_s, the slice the serving thread gives them. */
#include "lib/remote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "drover/sync.h"

/* A malloc'd answer of n bytes from p. */
static int answer(const void *p, size_t n, void **out, size_t *out_len,
                  dv_error_t *err)
{
    if (!out)
        return 0;
    if (!(*out = malloc(n)))
        return dv__errprintf(err, ENOMEM, "remote: out of memory");
    memcpy(*out, p, n);
    *out_len = n;
    return 0;
}

static int serve_sem(dv_sem_t *s, int op, double timeout_s, int32_t *value,
                     void **out, size_t *out_len, dv_error_t *err)
{
    int64_t v, max;
    uint32_t m;
    switch (op) {
    case DV_ROP_SEM_ACQUIRE:
        return dv_sem_acquire(s, timeout_s, err);
    case DV_ROP_SEM_RELEASE:
        return dv_sem_release(s, err);
    default:
        v = dv_sem_value(s, err);
        max = dv_sem_max(s, err);
        if (v < 0 || max < 0)
            return -1;
        *value = (int32_t)v;
        m = (uint32_t)max;
        return answer(&m, sizeof(m), out, out_len, err);
    }
}

static int read_ticket(const void *in, size_t in_len, dv_barrier_ticket_t *t,
                       dv_error_t *err)
{
    if (in_len != 8)
        return dv__errprintf(err, EPROTO, "barrier: bad ticket");
    memcpy(&t->gen, in, 4);
    memcpy(&t->index, (const unsigned char *)in + 4, 4);
    return 0;
}

static int serve_arrive(dv_barrier_t *b, double timeout_s, const void *in,
                        size_t in_len, int32_t *value, void **out,
                        size_t *out_len, dv_error_t *err)
{
    if (in_len != 1)
        return dv__errprintf(err, EPROTO, "barrier: bad arrive");
    dv_barrier_ticket_t t;
    int index = dv_barrier_arrive(b, *(const unsigned char *)in != 0, timeout_s,
                                  &t, err);
    if (index < 0)
        return -1;
    /* Taken: an answer that cannot be built loses the place, so break it
     * rather than leave the others waiting for this caller. */
    if (answer(&t.gen, sizeof(t.gen), out, out_len, err) < 0) {
        dv_barrier_abort(b, NULL);
        return -1;
    }
    *value = index;
    return 0;
}

static int serve_state(dv_barrier_t *b, int32_t *value, void **out,
                       size_t *out_len, dv_error_t *err)
{
    int32_t st[2];
    int n = dv_barrier_n_waiting(b, err);
    st[0] = dv_barrier_parties(b, err);
    st[1] = dv_barrier_broken(b, err);
    if (n < 0 || st[0] < 0 || st[1] < 0)
        return -1;
    *value = n;
    return answer(st, sizeof(st), out, out_len, err);
}

static int serve_barrier(dv_barrier_t *b, int op, double timeout_s,
                         const void *in, size_t in_len, int32_t *value,
                         void **out, size_t *out_len, dv_error_t *err)
{
    dv_barrier_ticket_t t;
    switch (op) {
    case DV_ROP_BARRIER_ARRIVE:
        return serve_arrive(b, timeout_s, in, in_len, value, out, out_len, err);
    case DV_ROP_BARRIER_ABORT:
        return dv_barrier_abort(b, err);
    case DV_ROP_BARRIER_RESET:
        return dv_barrier_reset(b, err);
    case DV_ROP_BARRIER_STATE:
        return serve_state(b, value, out, out_len, err);
    default:
        break;
    }
    if (read_ticket(in, in_len, &t, err) < 0)
        return -1;
    if (op == DV_ROP_BARRIER_AWAIT)
        return dv_barrier_await(b, &t, timeout_s, err);
    if (op == DV_ROP_BARRIER_GIVE_UP)
        return dv_barrier_give_up(b, &t, err);
    return dv_barrier_pass(b, &t, err);
}

int dv__sync_serve(void *obj, int op, double timeout_s, const void *in,
                   size_t in_len, int32_t *value, void **out, size_t *out_len,
                   dv_error_t *err)
{
    *value = 0;
    if (op >= DV_ROP_SEM_ACQUIRE && op <= DV_ROP_SEM_VALUE)
        return serve_sem(obj, op, timeout_s, value, out, out_len, err);
    if (op >= DV_ROP_BARRIER_ARRIVE && op <= DV_ROP_SYNC_LAST)
        return serve_barrier(obj, op, timeout_s, in, in_len, value, out,
                             out_len, err);
    return dv__errprintf(err, EINVAL, "remote: unknown operation %d", op);
}
