/* Same-binary tasks: the registry DV_TASK fills before main() runs, and the
 * result bytes a task may leave for its caller. Every process of a job runs
 * the same executable, so a task travels as its name. */
#include "lib/internal.h"
#include "lib/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    const char *name;
    dv_task_f fn;
};

/* Filled by constructors (before main, one thread), read-only afterwards. */
static struct entry *tasks;
static size_t ntasks, cap;
static void (*prelude)(void); /* set before dv_init */

void dv_task_set_prelude(void (*fn)(void))
{
    prelude = fn;
}

void dv__task_prelude(void)
{
    if (prelude)
        prelude();
}

void dv_task_register(const char *name, dv_task_f fn)
{
    if (!name || !fn || !*name || dv_task_find(name))
        return;
    if (ntasks == cap) {
        size_t ncap = cap ? cap * 2 : 32;
        struct entry *t = realloc(tasks, ncap * sizeof(*t));
        if (!t)
            return; /* constructors cannot report: the task stays unknown */
        tasks = t;
        cap = ncap;
    }
    tasks[ntasks].name = name;
    tasks[ntasks].fn = fn;
    ntasks++;
}

dv_task_f dv_task_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < ntasks; i++)
        if (strcmp(tasks[i].name, name) == 0)
            return tasks[i].fn;
    return NULL;
}

int dv_result_set(dv_result_t *result, const void *data, size_t len)
{
    if (!result || (!data && len)) {
        errno = EINVAL;
        return -1;
    }
    if (len > DV_MESSAGE_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    void *copy = malloc(len ? len : 1);
    if (!copy) {
        errno = ENOMEM;
        return -1;
    }
    if (len)
        memcpy(copy, data, len);
    free(result->data);
    result->data = copy;
    result->len = len;
    return 0;
}
