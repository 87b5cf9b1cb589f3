/* dv_init / dv_finalize: roles, idempotence, a second init after
 * finalize, and handles that outlive their runtime. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "drover/drover.h"

DV_TASK(t_zero)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    return 0;
}

DV_TASK(t_forever)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    for (;;)
        ;
    return 0;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    CHECK_EQ_INT(dv_finalize(), 0); /* before init: nothing to do */
    CHECK_EQ_INT(dv_init(&argc, &argv, &err), 0);
    CHECK(getenv("DROVER_RUNTIME_DIR") != NULL);
    CHECK(getenv("DROVER_JOB_ID") != NULL);
    CHECK_EQ_INT(dv_init(NULL, NULL, &err), 0); /* twice: no-op */
    dv_process_t *p = dv_process_start("t_forever", NULL, 0, NULL, &err);
    CHECK(p != NULL);
    /* finalize stops the process; its handle then says so. */
    CHECK_EQ_INT(dv_finalize(), 0);
    CHECK_EQ_INT(dv_finalize(), 0);
    CHECK_EQ_INT(dv_process_join(p, 0, &err), -1);
    CHECK_EQ_INT(errno, ENOTCONN);
    CHECK(!dv_process_is_alive(p));
    int code;
    CHECK_EQ_INT(dv_process_exitcode(p, &code), -1);
    CHECK_EQ_INT(dv_process_kill(p), -1);
    dv_process_destroy(&p);
    CHECK(dv_process_start("t_zero", NULL, 0, NULL, &err) == NULL);
    CHECK_EQ_INT(errno, ENOTCONN);
    /* A second init joins the same private job again. */
    CHECK_EQ_INT(dv_init(NULL, NULL, &err), 0);
    p = dv_process_start("t_zero", NULL, 0, NULL, &err);
    CHECK(p != NULL);
    CHECK_EQ_INT(dv_process_join(p, 30, &err), 0);
    CHECK_EQ_INT(dv_process_exitcode(p, &code), 0);
    CHECK_EQ_INT(code, 0);
    dv_process_destroy(&p);
    dv_finalize();
    return CHECK_DONE();
}
