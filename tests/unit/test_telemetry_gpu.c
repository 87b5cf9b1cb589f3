/* Tests of the GPU samplers through the test doubles of libnvidia-ml and
 * librocm_smi64 (tests/fakes), loaded through the same dlopen path as the
 * real libraries: two GPUs, one that fails, none, a lost GPU, a failing
 * driver, a missing library, a library without NVML's symbols; and the
 * node table's count (dv_telem_count_gpus), which loads and unloads at
 * once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "telemetry/telemetry.h"

static dv_telem_sampler_t *open_nvml(const char *script, const char *path)
{
    dv_telem_opts_t o = {.proc_root = "/proc",
                         .node_name = "g",
                         .nvml_path = path,
                         .rsmi_path = "/nonexistent.so"};
    setenv("DV_FAKE_NVML", script, 1);
    dv_telem_sampler_t *s = dv_telem_sampler_create(&o, NULL);
    CHECK(s != NULL);
    return s;
}

static void test_two(void)
{
    dv_telem_sample_t s;
    dv_telem_sampler_t *sp = open_nvml("two", FAKE_NVML);
    CHECK_EQ_INT(dv_telem_sampler_gpu_count(sp), 2);
    CHECK(dv_telem_sampler_note(sp)[0] == '\0');
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(dv_telem_sampler_sample(sp, &s, NULL), 0);
        CHECK_EQ_INT(s.ngpus, 2);
    }
    const dv_telem_gpu_t *g = &s.gpus[1];
    CHECK_EQ_INT(g->index, 1);
    CHECK_EQ_INT(g->vendor, DV_TELEM_VENDOR_NVIDIA);
    CHECK(strcmp(g->name, "Fake GPU 1 (test double)") == 0);
    CHECK(strcmp(g->uuid, "GPU-fa4e0000-0000-0000-0000-000000000001") == 0);
    CHECK_EQ_INT(g->valid, DV_TELEM_GPU_UTIL | DV_TELEM_GPU_MEM |
                               DV_TELEM_GPU_TEMP | DV_TELEM_GPU_POWER);
    CHECK_EQ_INT(g->util_gpu, 87);
    CHECK_EQ_INT(g->util_mem, 41);
    CHECK_EQ_INT(g->mem_used, 60ull << 30);
    CHECK_EQ_INT(g->mem_total, 80ull << 30);
    CHECK_EQ_INT(g->temp_c, 67);
    CHECK_EQ_INT(g->power_mw, 402500);
    CHECK_EQ_INT(s.gpus[0].util_gpu, 9);
    dv_telem_sampler_destroy(&sp);
}

/* nvmlInit once per sampler, not per sample; shut down at destroy. */
static void test_init_once(void)
{
    char path[] = "/tmp/dv-fake-nvml-countsXXXXXX", line[64] = "";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    setenv("DV_FAKE_NVML_COUNTS", path, 1);
    dv_telem_sample_t s;
    dv_telem_sampler_t *sp = open_nvml("two", FAKE_NVML);
    for (int i = 0; i < 5; i++)
        dv_telem_sampler_sample(sp, &s, NULL);
    dv_telem_sampler_destroy(&sp);
    FILE *f = fopen(path, "r");
    CHECK(f && fgets(line, sizeof(line), f));
    if (f)
        fclose(f);
    CHECK(strcmp(line, "init 1 shutdown 1\n") == 0);
    unsetenv("DV_FAKE_NVML_COUNTS");
    unlink(path);
}

static void test_onefail_none_initfail(void)
{
    dv_telem_sample_t s;
    dv_telem_sampler_t *sp = open_nvml("onefail", FAKE_NVML);
    CHECK_EQ_INT(dv_telem_sampler_gpu_count(sp), 1);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK_EQ_INT(s.ngpus, 1);
    CHECK_EQ_INT(s.gpus[0].index, 0);
    CHECK(strstr(s.note, "nvml device 1: unavailable: Unknown Error") != NULL);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK(s.note[0] == '\0'); /* said once */
    dv_telem_sampler_destroy(&sp);

    sp = open_nvml("none", FAKE_NVML);
    CHECK_EQ_INT(dv_telem_sampler_gpu_count(sp), 0);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK_EQ_INT(s.ngpus, 0);
    CHECK(strncmp(s.note, "unavailable: nvml: no GPU", 25) == 0);
    CHECK(s.valid & DV_TELEM_LOAD); /* CPU-only samples go on */
    dv_telem_sampler_destroy(&sp);

    sp = open_nvml("initfail", FAKE_NVML);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK_EQ_INT(s.ngpus, 0);
    CHECK(strstr(s.note, "unavailable: nvml: Driver Not Loaded") != NULL);
    dv_telem_sampler_destroy(&sp);

    sp = open_nvml("nopower", FAKE_NVML);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK_EQ_INT(s.ngpus, 2);
    CHECK(!(s.gpus[0].valid & DV_TELEM_GPU_POWER));
    CHECK(s.gpus[0].valid & DV_TELEM_GPU_UTIL);
    CHECK(s.note[0] == '\0'); /* not supported is not news */
    dv_telem_sampler_destroy(&sp);
}

static void test_lost(void)
{
    dv_telem_sample_t s;
    dv_telem_sampler_t *sp = open_nvml("lost", FAKE_NVML);
    dv_telem_sampler_sample(sp, &s, NULL);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK_EQ_INT(s.ngpus, 2);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK_EQ_INT(s.ngpus, 1);
    CHECK(strstr(s.note, "nvml device 1 utilization: GPU is lost") != NULL);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK_EQ_INT(s.ngpus, 1);
    CHECK(s.note[0] == '\0');
    dv_telem_sampler_destroy(&sp);
}

static void test_missing_libraries(void)
{
    dv_telem_sample_t s;
    dv_telem_sampler_t *sp = open_nvml("two", "/nonexistent/libnvidia-ml.so.1");
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK_EQ_INT(s.ngpus, 0);
    /* one note, with dlerror()'s text for both libraries */
    CHECK(strncmp(s.note,
                  "unavailable: nvml: /nonexistent/libnvidia-ml.so.1: "
                  "cannot open shared object file",
                  80) == 0);
    CHECK(strstr(s.note, "; rocm-smi: /nonexistent.so: cannot open") != NULL);
    dv_telem_sampler_destroy(&sp);

    sp = open_nvml("two", "libm.so.6"); /* loads, but is not NVML */
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK(strstr(s.note, "nvml: libm.so.6: no symbol nvmlInit_v2") != NULL);
    dv_telem_sampler_destroy(&sp);

    setenv("DROVER_NVML_LIBRARY", FAKE_NVML, 1); /* the env override */
    dv_telem_opts_t o = {.node_name = "e", .rsmi_path = "/nonexistent.so"};
    sp = dv_telem_sampler_create(&o, NULL);
    CHECK_EQ_INT(dv_telem_sampler_gpu_count(sp), 2);
    dv_telem_sampler_destroy(&sp);
    unsetenv("DROVER_NVML_LIBRARY");
}

static void test_rsmi(void)
{
    dv_telem_opts_t o = {.node_name = "a",
                         .nvml_path = "/nonexistent.so",
                         .rsmi_path = FAKE_RSMI};
    dv_telem_sample_t s;
    unsetenv("DV_FAKE_RSMI");
    dv_telem_sampler_t *sp = dv_telem_sampler_create(&o, NULL);
    CHECK_EQ_INT(dv_telem_sampler_gpu_count(sp), 1);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK_EQ_INT(s.ngpus, 1);
    CHECK(s.note[0] == '\0'); /* NVML missing on an AMD node: no news */
    const dv_telem_gpu_t *g = &s.gpus[0];
    CHECK_EQ_INT(g->vendor, DV_TELEM_VENDOR_AMD);
    CHECK_EQ_INT(g->util_gpu, 55);
    CHECK_EQ_INT(g->util_mem, 20);
    CHECK_EQ_INT(g->mem_used, 16ull << 30);
    CHECK_EQ_INT(g->temp_c, 48);
    CHECK_EQ_INT(g->power_mw, 300500);
    CHECK(strcmp(g->uuid, "0x000000000000fa4e") == 0);
    dv_telem_sampler_destroy(&sp);
    setenv("DV_FAKE_RSMI", "initfail", 1);
    sp = dv_telem_sampler_create(&o, NULL);
    dv_telem_sampler_sample(sp, &s, NULL);
    CHECK(strstr(s.note, "rocm-smi: RSMI_STATUS_INIT_ERROR") != NULL);
    dv_telem_sampler_destroy(&sp);
    unsetenv("DV_FAKE_RSMI");
}

/* The node table's count: the sampler's libraries, opened and closed. */
static void test_count(void)
{
    char why[256], path[] = "/tmp/dv-fake-nvml-countsXXXXXX", line[64] = "";
    dv_telem_opts_t o = {.nvml_path = FAKE_NVML,
                         .rsmi_path = "/nonexistent.so"};
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    setenv("DV_FAKE_NVML_COUNTS", path, 1);
    setenv("DV_FAKE_NVML", "two", 1);
    CHECK_EQ_INT(dv_telem_count_gpus(&o, why, sizeof(why)), 2);
    CHECK(why[0] == '\0');
    FILE *f = fopen(path, "r");
    CHECK(f && fgets(line, sizeof(line), f));
    if (f)
        fclose(f);
    CHECK(strcmp(line, "init 1 shutdown 1\n") == 0); /* nothing left open */
    unsetenv("DV_FAKE_NVML_COUNTS");
    unlink(path);
    close(fd);
    setenv("DV_FAKE_NVML", "onefail", 1);
    CHECK_EQ_INT(dv_telem_count_gpus(&o, why, sizeof(why)), 1);
    CHECK(strstr(why, "nvml device 1: unavailable") != NULL);
    setenv("DV_FAKE_NVML", "initfail", 1);
    CHECK_EQ_INT(dv_telem_count_gpus(&o, why, sizeof(why)), 0);
    CHECK(strncmp(why, "unavailable: nvml: ", 19) == 0);
    unsetenv("DV_FAKE_NVML");
    /* AMD through ROCm SMI; the environment chooses as for a sampler */
    unsetenv("DV_FAKE_RSMI");
    setenv("DROVER_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
    setenv("DROVER_RSMI_LIBRARY", FAKE_RSMI, 1);
    CHECK_EQ_INT(dv_telem_count_gpus(NULL, NULL, 0), 1);
    setenv("DROVER_RSMI_LIBRARY", "/nonexistent.so", 1);
    CHECK_EQ_INT(dv_telem_count_gpus(NULL, why, sizeof(why)), 0);
    CHECK(strstr(why, "cannot open shared object file") != NULL);
    unsetenv("DROVER_NVML_LIBRARY");
    unsetenv("DROVER_RSMI_LIBRARY");
    o.no_gpu = 1;
    CHECK_EQ_INT(dv_telem_count_gpus(&o, why, sizeof(why)), 0);
}

/* A job Slurm gave no GPU (CUDA_VISIBLE_DEVICES=NoDevFiles), or one told
 * to see none (empty, -1), counts 0 whatever the node has; a list is left
 * to the placements, which index all the node's GPUs. */
static void test_count_hidden(void)
{
    char why[256];
    dv_telem_opts_t o = {.nvml_path = FAKE_NVML,
                         .rsmi_path = "/nonexistent.so"};
    setenv("DV_FAKE_NVML", "two", 1);
    const char *none[] = {"NoDevFiles", "", "-1"};
    for (int i = 0; i < 3; i++) {
        setenv("CUDA_VISIBLE_DEVICES", none[i], 1);
        CHECK_EQ_INT(dv_telem_count_gpus(&o, why, sizeof(why)), 0);
        CHECK(strstr(why, "CUDA_VISIBLE_DEVICES gives this job none") != NULL);
    }
    setenv("CUDA_VISIBLE_DEVICES", "1", 1);
    CHECK_EQ_INT(dv_telem_count_gpus(&o, NULL, 0), 2);
    unsetenv("CUDA_VISIBLE_DEVICES");
    setenv("ROCR_VISIBLE_DEVICES", "NoDevFiles", 1);
    CHECK_EQ_INT(dv_telem_count_gpus(&o, why, sizeof(why)), 0);
    CHECK(strstr(why, "ROCR_VISIBLE_DEVICES") != NULL);
    unsetenv("ROCR_VISIBLE_DEVICES");
    CHECK_EQ_INT(dv_telem_count_gpus(&o, NULL, 0), 2);
    unsetenv("DV_FAKE_NVML");
}

int main(void)
{
    test_two();
    test_init_once();
    test_onefail_none_initfail();
    test_lost();
    test_missing_libraries();
    test_rsmi();
    test_count();
    test_count_hidden();
    return CHECK_DONE();
}
