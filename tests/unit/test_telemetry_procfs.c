/* Tests of the /proc readers and the CPU/memory side of the sampler, on
 * the fixture trees of tests/fixtures/telemetry (normal, odd values,
 * broken text, missing files) and on a tree rewritten between samples;
 * and a sampler out of descriptors, which must fail, not sample nothing. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "telemetry/internal.h"

static char fixtures[2048];

static dv_telem_sampler_t *open_tree(const char *tree)
{
    char root[4096];
    snprintf(root, sizeof(root), "%s/%s", fixtures, tree);
    dv_telem_opts_t o = {.proc_root = root, .node_name = "fx", .no_gpu = 1};
    dv_error_t err;
    dv_telem_sampler_t *s = dv_telem_sampler_create(&o, &err);
    CHECK(s != NULL);
    return s;
}

static void test_parsers(void)
{
    double l[3];
    dv__cpu_times_t a, b;
    uint64_t total, used;
    CHECK_EQ_INT(dv__telem_parse_loadavg("0.17 0.34 0.72 1/2 3\n", l), 0);
    CHECK(l[0] == 0.17 && l[1] == 0.34 && l[2] == 0.72);
    CHECK_EQ_INT(dv__telem_parse_loadavg("0.17 0.34", l), -1);
    CHECK_EQ_INT(dv__telem_parse_loadavg("-1 0 0", l), -1);
    CHECK_EQ_INT(dv__telem_parse_loadavg("nan 0 0", l), -1);
    CHECK_EQ_INT(dv__telem_parse_loadavg("1x 0 0", l), -1);
    CHECK_EQ_INT(dv__telem_parse_loadavg("", l), -1);
    CHECK_EQ_INT(dv__telem_parse_stat("cpu  1 2 3 4 5 6 7 8 9 10\n", &a), 0);
    CHECK_EQ_INT(a.total, 36);
    CHECK_EQ_INT(a.busy, 27);
    CHECK_EQ_INT(a.ncpus, 0);
    CHECK_EQ_INT(dv__telem_parse_stat("cpu  1 2 3\n", &a), -1);
    CHECK_EQ_INT(dv__telem_parse_stat("cpu0 1 2 3 4\n", &a), -1);
    CHECK_EQ_INT(dv__telem_parse_stat("cpu  99999999999999999999 1 1 1\n", &a),
                 -1);
    CHECK_EQ_INT(dv__telem_parse_stat("cpu  10 0 10 80\ncpu0 5 0 5 40\n", &a),
                 0);
    CHECK_EQ_INT(dv__telem_parse_stat("cpu  20 0 20 90\ncpu0 5 0 5 40\n", &b),
                 0);
    CHECK_EQ_INT(b.ncpus, 1);
    CHECK(fabs(dv__telem_cpu_percent(&a, &b) - 100.0 * 20 / 30) < 1e-9);
    CHECK(dv__telem_cpu_percent(&b, &a) < 0); /* went backwards */
    CHECK(dv__telem_cpu_percent(&a, &a) < 0); /* no time passed */
    CHECK_EQ_INT(dv__telem_parse_meminfo("MemTotal: 10 kB\nMemAvailable: 4 "
                                         "kB\n",
                                         &total, &used),
                 0);
    CHECK_EQ_INT(total, 10240);
    CHECK_EQ_INT(used, 6144);
    CHECK_EQ_INT(dv__telem_parse_meminfo("MemTotal: x kB\n", &total, &used),
                 -1);
    CHECK_EQ_INT(dv__telem_parse_meminfo("MemFree: 1 kB\n", &total, &used), -1);
}

static void test_trees(void)
{
    dv_telem_sample_t s;
    dv_telem_sampler_t *sp = open_tree("normal");
    CHECK_EQ_INT(dv_telem_sampler_sample(sp, &s, NULL), 0);
    CHECK(strcmp(s.node, "fx") == 0);
    CHECK(s.valid & DV_TELEM_LOAD);
    CHECK(s.load1 == 0.17 && s.load5 == 0.34 && s.load15 == 0.72);
    CHECK(!(s.valid & DV_TELEM_CPU)); /* same counters: no delta yet */
    CHECK_EQ_INT(s.ncpus, 4);
    CHECK_EQ_INT(s.mem_total, 16367636ull * 1024);
    CHECK_EQ_INT(s.mem_used, (16367636ull - 12345676ull) * 1024);
    CHECK_EQ_INT(s.ngpus, 0);
    CHECK(s.note[0] == '\0'); /* no_gpu: nothing to say */
    dv_telem_sampler_destroy(&sp);
    CHECK(sp == NULL);

    sp = open_tree("odd");
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK(s.load1 == 29.7 && s.load5 == 1.0 && s.load15 == 123.45);
    CHECK_EQ_INT(s.ncpus, 2);
    CHECK_EQ_INT(s.mem_used, (1000 - 400) * 1024); /* no MemAvailable */
    dv_telem_sampler_destroy(&sp);

    const char *bad[] = {"broken", "missing"};
    for (int i = 0; i < 2; i++) {
        sp = open_tree(bad[i]);
        CHECK_EQ_INT(dv_telem_sampler_sample(sp, &s, NULL), 0);
        CHECK_EQ_INT(s.valid, 0);
        CHECK_EQ_INT(s.ngpus, 0);
        dv_telem_sampler_destroy(&sp);
    }
    dv_telem_sampler_destroy(&sp); /* NULL is fine */
    dv_telem_sampler_destroy(NULL);
    CHECK_EQ_INT(dv_telem_sampler_sample(NULL, &s, NULL), -1);
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* CPU % from deltas, and a counter that goes backwards. */
static void test_deltas(void)
{
    char dir[] = "/tmp/dv-telem-procXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, "stat", "cpu  100 0 100 800 0 0 0 0\ncpu0 1 1 1 1\n");
    dv_telem_opts_t o = {.proc_root = dir, .node_name = "d", .no_gpu = 1};
    dv_telem_sampler_t *sp = dv_telem_sampler_create(&o, NULL);
    dv_telem_sample_t s;
    put(dir, "stat", "cpu  130 0 120 850 0 0 0 0\ncpu0 1 1 1 1\n");
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK(s.valid & DV_TELEM_CPU);
    CHECK(fabs(s.cpu_percent - 50.0) < 1e-9);
    put(dir, "stat", "cpu  10 0 10 80 0 0 0 0\n");
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK(!(s.valid & DV_TELEM_CPU));
    put(dir, "stat", "cpu  20 0 10 80 0 0 0 0\n");
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK(s.valid & DV_TELEM_CPU);
    CHECK(fabs(s.cpu_percent - 100.0) < 1e-9);
    dv_telem_sampler_destroy(&sp);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

static void test_node_name(void)
{
    dv_telem_opts_t o = {.proc_root = "/nonexistent", .no_gpu = 1};
    dv_telem_sample_t s;
    setenv("DROVER_NODE_NAME", "node\x01name", 1);
    dv_telem_sampler_t *sp = dv_telem_sampler_create(&o, NULL);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK(strcmp(s.node, "node?name") == 0);
    CHECK_EQ_INT(s.valid, 0);
    dv_telem_sampler_destroy(&sp);
    unsetenv("DROVER_NODE_NAME");
}

/* With every descriptor taken, the first sample cannot open its /proc
 * files: an error naming the file (EMFILE), not a sample of unknowns. */
static void test_out_of_fds(void)
{
    dv_telem_sampler_t *sp = open_tree("normal");
    dv_telem_sample_t s;
    dv_error_t err = {""};
    struct rlimit old, low;
    CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 64;
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fds[64], n = 0;
    while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
        n++;
    CHECK(n < 64);
    int r = dv_telem_sampler_sample(sp, &s, &err);
    int e = errno;
    while (n > 0)
        close(fds[--n]);
    setrlimit(RLIMIT_NOFILE, &old);
    CHECK_EQ_INT(r, -1);
    CHECK_EQ_INT(e, EMFILE);
    CHECK(strstr(err.text, "/loadavg") != NULL);
    CHECK(strstr(err.text, strerror(EMFILE)) != NULL);
    /* With descriptors free again, the sampler goes on. */
    CHECK_EQ_INT(dv_telem_sampler_sample(sp, &s, &err), 0);
    CHECK(s.valid & DV_TELEM_LOAD);
    dv_telem_sampler_destroy(&sp);
}

int main(void)
{
    const char *src = getenv("DROVER_SOURCE_DIR");
    snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/telemetry",
             src ? src : ".");
    test_parsers();
    test_trees();
    test_deltas();
    test_node_name();
    test_out_of_fds();
    return CHECK_DONE();
}
