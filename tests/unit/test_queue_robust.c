/* White-box test of the queue's lock recovery: a process killed while it
 * holds the queue's lock, in the middle of a claim, leaves the robust
 * mutex EOWNERDEAD; the next locker must repair the counters and the queue
 * must go on. Built with queue.c included, to reach its internals. */
#include "lib/queue.c"

#include <signal.h>

#include "check.h"
#include "test_queue_util.h"

static int get_char(dv_queue_t *q, char *c)
{
    void *d;
    size_t n;
    if (dv_queue_get(q, &d, &n, 2, NULL) < 0)
        return -1;
    *c = n == 1 ? *(char *)d : '?';
    free(d);
    return 0;
}

int main(void)
{
    tq_setup("qrobust");
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(0, &err);
    CHECK(q != NULL);
    CHECK_EQ_INT(dv_queue_put(q, "a", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "b", 1, 0, &err), 0);
    CHECK_EQ_INT(dv_queue_put(q, "c", 1, 0, &err), 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* Half a claim of "a", a wrong count, then death with the lock. */
        if (qlock(q) < 0)
            _exit(1);
        struct desc *d = desc_at(q, q->sh->head);
        d->pid = (int32_t)getpid();
        st32(&d->state, M_READING);
        __atomic_store_n(&q->sh->count, 77, __ATOMIC_RELAXED);
        raise(SIGKILL);
        _exit(2);
    }
    CHECK_EQ_INT(tq_wait(pid), 128 + SIGKILL);
    char c = 0;
    CHECK_EQ_INT(get_char(q, &c), 0); /* "a" went with the dead one */
    CHECK_EQ_INT(c, 'b');
    CHECK_EQ_INT(dv_queue_size(q), 1);
    CHECK_EQ_INT(get_char(q, &c), 0);
    CHECK_EQ_INT(c, 'c');
    CHECK_EQ_INT(dv_queue_size(q), 0);
    CHECK_EQ_INT(dv_queue_put(q, "d", 1, 0, &err), 0);
    CHECK_EQ_INT(get_char(q, &c), 0);
    CHECK_EQ_INT(c, 'd');
    /* The dead one's message no longer holds space once someone needs
     * it: fill the whole ring twice over. */
    size_t big = DV_MESSAGE_MAX;
    char *p = calloc(1, big);
    pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 16; i++)
            if (dv_queue_put(q, p, big, 10, NULL) < 0)
                _exit(1);
        _exit(0);
    }
    for (int i = 0; i < 16; i++) {
        void *d;
        size_t n;
        CHECK_EQ_INT(dv_queue_get(q, &d, &n, 10, &err), 0);
        free(d);
    }
    CHECK_EQ_INT(tq_wait(pid), 0);
    free(p);
    dv_queue_destroy(&q);
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
