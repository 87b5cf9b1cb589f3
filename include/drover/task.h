/* drover: runtime start-up and same-binary tasks.
 *
 * Every process of a job runs the user's executable. dv_init() at the top of
 * main() decides the role: in the main process it returns 0; in a process the
 * runtime started for a task it runs that task and exits with its return
 * code, never returning. Tasks are registered by name at compile time with
 * DV_TASK(fn): the name is the function's name. */
#ifndef DROVER_TASK_H
#define DROVER_TASK_H

#include <stddef.h>

#include "drover/error.h"
#include "drover/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where a task may leave result bytes for its caller (pool items use them;
 * plain processes discard them). Owned by the runtime. */
typedef struct dv_result dv_result_t;

/* A task: argument bytes in (owned by the runtime, valid during the call),
 * exit code out (0 is success). result may be NULL-safe-ignored. */
typedef int (*dv_task_f)(const void *arg, size_t len, dv_result_t *result);

/* Copy len bytes from data into the task's result. Returns 0, or -1 with
 * errno (ENOMEM, EMSGSIZE over DV_MESSAGE_MAX). */
DV_API int dv_result_set(dv_result_t *result, const void *data, size_t len);

/* Register fn under name; called by DV_TASK before main(). name must be a
 * string with static storage. Duplicates keep the first. */
DV_API void dv_task_register(const char *name, dv_task_f fn);

/* Look a registered task up by name; NULL when there is none. */
DV_API dv_task_f dv_task_find(const char *name);

/* Set fn (NULL: none) to run in every task process right after its fork,
 * before its task is known; the fork server also runs it ahead, in the
 * process it keeps forked for the next start, so that this work is off the
 * start's path. For what every task of the program needs first (an
 * interpreter's after-fork reset). Set it before dv_init(). */
DV_API void dv_task_set_prelude(void (*fn)(void));

/* Register fn as a task named after it, at compile time. */
#define DV_TASK(fn)                                                  \
    static int fn(const void *, size_t, dv_result_t *);              \
    __attribute__((constructor)) static void dv_task_ctor_##fn(void) \
    {                                                                \
        dv_task_register(#fn, fn);                                   \
    }                                                                \
    static int fn

/* Join the job (or start a private single-node runtime when the program was
 * not started by `drover run`). argc/argv may be NULL. Returns 0 in the main
 * process, or -1 with err filled. In a task process it does not return. */
DV_API int dv_init(int *argc, char ***argv, dv_error_t *err);

/* Leave the job: in a private runtime, tears it down (every process of the
 * job ends, shared memory is removed). Safe to call twice. */
DV_API int dv_finalize(void);

#ifdef __cplusplus
}
#endif

#endif
