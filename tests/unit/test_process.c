/* Processes: start, join with timeout, is_alive, exit codes (also death
 * by signal), terminate, kill, GPU placement, nested starts, bad input. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "drover/drover.h"

DV_TASK(t_exit)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    int code = 0;
    if (len == sizeof(int))
        memcpy(&code, arg, sizeof(int));
    return code;
}

DV_TASK(t_sleep)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    for (;;)
        pause();
    return 0;
}

DV_TASK(t_abort)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
    return 0;
}

/* Exits 0 when CUDA_VISIBLE_DEVICES equals the argument string. */
DV_TASK(t_gpu_env)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const char *v = getenv("CUDA_VISIBLE_DEVICES");
    const char *r = getenv("ROCR_VISIBLE_DEVICES");
    if (!v || !r || strlen(v) != len || memcmp(v, arg, len) || strcmp(v, r))
        return 1;
    return 0;
}

/* Checks that the argument bytes arrive intact. */
DV_TASK(t_sum)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    const unsigned char *b = arg;
    unsigned s = 0;
    for (size_t i = 0; i < len; i++)
        s = s * 31 + b[i];
    return (int)(s % 200);
}

/* Starts a child of its own and returns its exit code + 1. */
DV_TASK(t_nested)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    dv_process_t *p = dv_process_start("t_exit", arg, len, NULL, NULL);
    int code = -1;
    if (!p || dv_process_join(p, 30, NULL) < 0 ||
        dv_process_exitcode(p, &code) < 0)
        return 100;
    dv_process_destroy(&p);
    return code + 1;
}

static int run_code(const char *task, const void *arg, size_t len,
                    const dv_placement_t *where)
{
    dv_error_t err;
    dv_process_t *p = dv_process_start(task, arg, len, where, &err);
    if (!p) {
        fprintf(stderr, "start %s: %s\n", task, err.text);
        return -1000;
    }
    int code = -999;
    CHECK_EQ_INT(dv_process_join(p, 30, &err), 0);
    CHECK(!dv_process_is_alive(p));
    CHECK_EQ_INT(dv_process_exitcode(p, &code), 0);
    dv_process_destroy(&p);
    CHECK(p == NULL);
    return code;
}

static void test_exit_codes(void)
{
    for (int c = 0; c < 256; c += 37) {
        CHECK_EQ_INT(run_code("t_exit", &c, sizeof(c), NULL), c);
    }
    CHECK_EQ_INT(run_code("t_abort", NULL, 0, NULL), -SIGABRT);
    CHECK_EQ_INT(run_code("t_nested", &(int){7}, sizeof(int), NULL), 8);
}

static void test_args(void)
{
    size_t n = (size_t)3 << 20;
    unsigned char *b = malloc(n);
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) {
        b[i] = (unsigned char)(i * 7 + (i >> 13));
        s = s * 31 + b[i];
    }
    CHECK_EQ_INT(run_code("t_sum", b, n, NULL), (int)(s % 200));
    free(b);
    dv_placement_t pl = DV_PLACEMENT_DEFAULT;
    pl.gpu = 3;
    CHECK_EQ_INT(run_code("t_gpu_env", "3", 1, &pl), 0);
}

static void test_signals(void)
{
    dv_error_t err;
    dv_process_t *p = dv_process_start("t_sleep", NULL, 0, NULL, &err);
    CHECK(p != NULL);
    CHECK(dv_process_pid(p) > 0);
    CHECK_EQ_INT(dv_process_node(p), 0);
    CHECK(dv_process_is_alive(p));
    int code;
    CHECK_EQ_INT(dv_process_exitcode(p, &code), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    CHECK_EQ_INT(dv_process_join(p, 0, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_process_join(p, 0.05, &err), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(dv_process_terminate(p), 0);
    CHECK_EQ_INT(dv_process_join(p, 10, &err), 0);
    CHECK_EQ_INT(dv_process_exitcode(p, &code), 0);
    CHECK_EQ_INT(code, -SIGTERM);
    CHECK_EQ_INT(dv_process_kill(p), -1);
    CHECK_EQ_INT(errno, ESRCH);
    dv_process_destroy(&p);

    p = dv_process_start("t_sleep", NULL, 0, NULL, &err);
    CHECK_EQ_INT(dv_process_kill(p), 0);
    CHECK_EQ_INT(dv_process_join(p, -1, &err), 0);
    CHECK_EQ_INT(dv_process_exitcode(p, &code), 0);
    CHECK_EQ_INT(code, -SIGKILL);
    dv_process_destroy(&p);

    /* A handle dropped while its process runs frees its slot later. */
    p = dv_process_start("t_sleep", NULL, 0, NULL, &err);
    pid_t pid = dv_process_pid(p);
    dv_process_destroy(&p);
    kill(pid, SIGKILL);
}

static void test_bad_input(void)
{
    dv_error_t err = {""};
    CHECK(dv_process_start("no_such_task", NULL, 0, NULL, &err) == NULL);
    CHECK_EQ_INT(errno, ENOENT);
    CHECK(strstr(err.text, "no_such_task") != NULL);
    CHECK(dv_process_start(NULL, NULL, 0, NULL, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(dv_process_start("t_exit", "x", DV_MESSAGE_MAX + 1, NULL, &err) ==
          NULL);
    CHECK_EQ_INT(errno, EMSGSIZE);
    CHECK(dv_process_start("t_exit", NULL, 4, NULL, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    dv_placement_t pl = DV_PLACEMENT_DEFAULT;
    pl.policy = DV_POLICY_NODE;
    pl.node = 5;
    CHECK(dv_process_start("t_exit", NULL, 0, &pl, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    pl.policy = DV_POLICY_HOST;
    pl.host = "no-such-host.invalid";
    CHECK(dv_process_start("t_exit", NULL, 0, &pl, &err) == NULL);
    CHECK_EQ_INT(errno, ENOENT);
    pl = DV_PLACEMENT_DEFAULT;
    pl.gpu = -7;
    CHECK(dv_process_start("t_exit", NULL, 0, &pl, &err) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_process_join(NULL, 0, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(!dv_process_is_alive(NULL));
    CHECK_EQ_INT(dv_process_pid(NULL), -1);
    dv_process_destroy(NULL);
}

static void test_many(void)
{
    enum { N = 40 };
    dv_process_t *ps[N];
    for (int i = 0; i < N; i++) {
        int c = i % 5;
        ps[i] = dv_process_start("t_exit", &c, sizeof(c), NULL, NULL);
        CHECK(ps[i] != NULL);
    }
    for (int i = 0; i < N; i++) {
        int code = -1;
        if (!ps[i])
            continue;
        CHECK_EQ_INT(dv_process_join(ps[i], 30, NULL), 0);
        CHECK_EQ_INT(dv_process_exitcode(ps[i], &code), 0);
        CHECK_EQ_INT(code, i % 5);
        dv_process_destroy(&ps[i]);
    }
    /* More than the status table holds, joined or dropped running. */
    for (int i = 0; i < 4200; i++) {
        dv_process_t *p = dv_process_start("t_exit", NULL, 0, NULL, NULL);
        if (!p) {
            CHECK(p != NULL);
            break;
        }
        if (i % 2)
            CHECK_EQ_INT(dv_process_join(p, 30, NULL), 0);
        dv_process_destroy(&p);
        if (i % 200 == 0)
            usleep(20000);
    }
}

int main(int argc, char **argv)
{
    dv_error_t err;
    CHECK(dv_process_start("t_exit", NULL, 0, NULL, &err) == NULL);
    CHECK_EQ_INT(errno, ENOTCONN);
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "dv_init: %s\n", err.text);
        return 1;
    }
    test_exit_codes();
    test_args();
    test_signals();
    test_bad_input();
    test_many();
    dv_finalize();
    CHECK(dv_process_start("t_exit", NULL, 0, NULL, &err) == NULL);
    dv_finalize();
    return CHECK_DONE();
}
