/* Tests of the monitor loop (count, stop, callback errors, pacing) and of
 * the start-up check of log and plot paths. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "telemetry/telemetry.h"

typedef struct got {
    int n, stop_at, fail_at;
    volatile sig_atomic_t *flag;
    char node[64];
} got_t;

static int put(const void *rec, size_t len, void *arg)
{
    got_t *g = arg;
    dv_telem_sample_t s;
    CHECK_EQ_INT(dv_telem_record_decode(rec, len, &s, NULL), 0);
    snprintf(g->node, sizeof(g->node), "%s", s.node);
    g->n++;
    if (g->flag && g->n == 2)
        *g->flag = 1;
    if (g->fail_at && g->n == g->fail_at) {
        errno = EPIPE;
        return -1;
    }
    return g->stop_at && g->n == g->stop_at;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_monitor(void)
{
    dv_telem_opts_t o = {.node_name = "mon", .no_gpu = 1};
    dv_telem_sampler_t *s = dv_telem_sampler_create(&o, NULL);
    got_t g = {0};
    double t0 = now();
    CHECK_EQ_INT(dv_telem_monitor_run(s, 0.02, 5, put, &g, NULL, NULL), 0);
    double el = now() - t0;
    CHECK_EQ_INT(g.n, 5);
    CHECK(el >= 0.079 && el < 2.0); /* 4 sleeps of 20 ms */
    CHECK(strcmp(g.node, "mon") == 0);

    got_t g2 = {.stop_at = 3};
    CHECK_EQ_INT(dv_telem_monitor_run(s, 0.001, 0, put, &g2, NULL, NULL), 0);
    CHECK_EQ_INT(g2.n, 3);

    dv_error_t err;
    got_t g3 = {.fail_at = 2};
    CHECK_EQ_INT(dv_telem_monitor_run(s, 0.001, 10, put, &g3, NULL, &err), -1);
    CHECK(errno == EPIPE && g3.n == 2);

    volatile sig_atomic_t stop = 0;
    got_t g4 = {.flag = &stop};
    CHECK_EQ_INT(dv_telem_monitor_run(s, 0.001, 0, put, &g4, &stop, NULL), 0);
    CHECK_EQ_INT(g4.n, 2);

    CHECK_EQ_INT(dv_telem_monitor_run(s, 0, 1, put, &g, NULL, NULL), -1);
    CHECK_EQ_INT(dv_telem_monitor_run(s, 1, -1, put, &g, NULL, NULL), -1);
    CHECK_EQ_INT(dv_telem_monitor_run(NULL, 1, 1, put, &g, NULL, NULL), -1);
    dv_telem_sampler_destroy(&s);
}

static void test_check_writable(void)
{
    char dir[] = "/tmp/dv-telem-wXXXXXX", path[256];
    dv_error_t err;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/new.svg", dir);
    CHECK_EQ_INT(dv_telem_check_writable(path, &err), 0);
    CHECK(access(path, F_OK) != 0); /* nothing left behind */
    CHECK_EQ_INT(dv_telem_check_writable(dir, &err), -1);
    CHECK(errno == EISDIR);
    snprintf(path, sizeof(path), "%s/no/such/dir/x.jsonl", dir);
    CHECK_EQ_INT(dv_telem_check_writable(path, &err), -1);
    CHECK(strstr(err.text, "No such file or directory") != NULL);
    CHECK_EQ_INT(dv_telem_check_writable("", &err), -1);
    snprintf(path, sizeof(path), "%s/ro.jsonl", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK_EQ_INT(dv_telem_check_writable(path, &err), 0);
    if (geteuid() != 0) { /* root writes anyway */
        chmod(path, 0444);
        CHECK_EQ_INT(dv_telem_check_writable(path, &err), -1);
    }
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_monitor();
    test_check_writable();
    return CHECK_DONE();
}
