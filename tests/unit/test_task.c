/* The task registry and result bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "drover/drover.h"
#include "lib/internal.h"

DV_TASK(first)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)res;
    return (int)len;
}

static int other(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    return 42;
}

int main(void)
{
    dv_task_f f = dv_task_find("first");
    CHECK(f != NULL);
    if (f)
        CHECK_EQ_INT(f("abc", 3, NULL), 3);
    CHECK(dv_task_find("nope") == NULL);
    CHECK(dv_task_find(NULL) == NULL);
    /* Duplicates keep the first; bad registrations are ignored. */
    dv_task_register("first", other);
    CHECK(dv_task_find("first") == f);
    dv_task_register("", other);
    CHECK(dv_task_find("") == NULL);
    dv_task_register(NULL, other);
    dv_task_register("null_fn", NULL);
    CHECK(dv_task_find("null_fn") == NULL);
    /* Many registrations grow the table. */
    static char names[300][16];
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof(names[i]), "t%d", i);
        dv_task_register(names[i], other);
    }
    for (int i = 0; i < 300; i++)
        CHECK(dv_task_find(names[i]) == other);
    CHECK(dv_task_find("first") == f);

    struct dv_result r = {NULL, 0};
    CHECK_EQ_INT(dv_result_set(&r, "hello", 5), 0);
    CHECK_EQ_INT(r.len, 5);
    CHECK(r.data && memcmp(r.data, "hello", 5) == 0);
    CHECK_EQ_INT(dv_result_set(&r, NULL, 0), 0);
    CHECK_EQ_INT(r.len, 0);
    CHECK_EQ_INT(dv_result_set(&r, "x", DV_MESSAGE_MAX + 1), -1);
    CHECK_EQ_INT(errno, EMSGSIZE);
    CHECK_EQ_INT(r.len, 0);
    CHECK_EQ_INT(dv_result_set(NULL, "x", 1), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_result_set(&r, NULL, 3), -1);
    free(r.data);
    return CHECK_DONE();
}
