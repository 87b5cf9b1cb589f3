/* Events: set, clear, is_set, wait with timeouts, across processes (a
 * barrier of waiting children), handles stale and forged. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "drover/drover.h"
#include "test_queue_util.h"

static void test_local(void)
{
    dv_error_t err;
    dv_event_t *e = dv_event_create(&err);
    CHECK(e != NULL);
    CHECK(!dv_event_is_set(e));
    CHECK_EQ_INT(dv_event_wait(e, 0, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    double t0 = tq_now();
    CHECK_EQ_INT(dv_event_wait(e, 0.05, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK(tq_now() - t0 >= 0.045 && tq_now() - t0 < 2);
    CHECK_EQ_INT(dv_event_set(e), 0);
    CHECK(dv_event_is_set(e));
    CHECK_EQ_INT(dv_event_set(e), 0);
    CHECK_EQ_INT(dv_event_wait(e, 0, &err), 0);
    CHECK_EQ_INT(dv_event_wait(e, -1, &err), 0);
    CHECK_EQ_INT(dv_event_clear(e), 0);
    CHECK(!dv_event_is_set(e));
    CHECK_EQ_INT(dv_event_set(NULL), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_event_clear(NULL), -1);
    CHECK(!dv_event_is_set(NULL));
    CHECK_EQ_INT(dv_event_wait(NULL, 0, &err), -1);
    CHECK_EQ_INT(dv_event_handle(e, NULL), -1);
    dv_event_destroy(&e);
    CHECK(e == NULL);
    dv_event_destroy(&e);
    dv_event_destroy(NULL);
}

/* Children attach from the handle and wait; one set releases them all. */
static void test_barrier(void)
{
    dv_error_t err;
    dv_event_t *e = dv_event_create(&err);
    dv_handle_t h;
    CHECK_EQ_INT(dv_event_handle(e, &h), 0);
    pid_t pids[4];
    int ready[2];
    CHECK_EQ_INT(pipe(ready), 0);
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            dv_event_t *c = dv_event_attach(&h, NULL);
            if (!c || dv_event_wait(c, 0.01, NULL) == 0 || errno != ETIMEDOUT)
                _exit(1);
            if (write(ready[1], "r", 1) != 1)
                _exit(1);
            int ok = dv_event_wait(c, i == 0 ? -1 : 20, NULL) == 0 &&
                     dv_event_is_set(c);
            dv_event_destroy(&c);
            _exit(ok ? 0 : 2);
        }
    }
    char r[4];
    for (size_t got = 0; got < sizeof(r);) { /* all wait, or about to */
        ssize_t k = read(ready[0], r + got, sizeof(r) - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(ready[0]);
    close(ready[1]);
    tq_sleep_ms(20);
    CHECK_EQ_INT(dv_event_set(e), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(tq_wait(pids[i]), 0);
    /* A child clears it; the parent sees it. */
    pid_t pid = fork();
    if (pid == 0) {
        dv_event_t *c = dv_event_attach(&h, NULL);
        _exit(c && dv_event_clear(c) == 0 ? 0 : 1);
    }
    CHECK_EQ_INT(tq_wait(pid), 0);
    CHECK(!dv_event_is_set(e));
    dv_event_destroy(&e);
}

static void test_handles(void)
{
    dv_error_t err;
    dv_event_t *e = dv_event_create(&err);
    dv_handle_t h, forged;
    CHECK_EQ_INT(dv_event_handle(e, &h), 0);
    forged = h;
    forged.bytes[12] ^= 0x80;
    CHECK(dv_event_attach(&forged, &err) == NULL && errno == EINVAL);
    memset(&forged, 0, sizeof(forged));
    CHECK(dv_event_attach(&forged, &err) == NULL && errno == EINVAL);
    CHECK(dv_event_attach(NULL, &err) == NULL && errno == EINVAL);
    dv_queue_t *q = dv_queue_create(0, &err);
    dv_handle_t hq;
    dv_queue_handle(q, &hq);
    CHECK(dv_event_attach(&hq, &err) == NULL && errno == EINVAL);
    dv_queue_destroy(&q);
    dv_event_t *e2 = dv_event_attach(&h, &err);
    CHECK(e2 != NULL);
    CHECK_EQ_INT(dv_event_set(e2), 0);
    CHECK(dv_event_is_set(e));
    dv_event_destroy(&e2);
    dv_event_destroy(&e);
    CHECK(dv_event_attach(&h, &err) == NULL && errno == ENOENT);
}

int main(void)
{
    tq_setup("event");
    test_local();
    test_barrier();
    test_handles();
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
