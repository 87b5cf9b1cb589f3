/* Processes started and joined from several threads at once (run under
 * ThreadSanitizer too): every exit code comes back to the right handle. */
#include <pthread.h>
#include <stdio.h>

#include "check.h"
#include "drover/drover.h"

enum { THREADS = 4, EACH = 60 };

DV_TASK(t_code)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    return len ? *(const unsigned char *)arg : 0;
}

static _Atomic int failures;

static void *worker(void *p)
{
    int id = (int)(long)p;
    for (int i = 0; i < EACH; i++) {
        unsigned char c = (unsigned char)(id * 50 + i % 50);
        dv_error_t err;
        dv_process_t *pr = dv_process_start("t_code", &c, 1, NULL, &err);
        int code = -1;
        if (!pr || dv_process_join(pr, 30, &err) < 0 ||
            dv_process_exitcode(pr, &code) < 0 || code != c)
            failures++;
        dv_process_destroy(&pr);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "dv_init: %s\n", err.text);
        return 1;
    }
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(failures, 0);
    dv_finalize();
    return CHECK_DONE();
}
