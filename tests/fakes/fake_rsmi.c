/* TEST DOUBLE of librocm_smi64 (ROCm SMI), for drover's telemetry tests
 * only: one scripted AMD GPU, no driver. Loaded through the samplers'
 * dlopen path (DROVER_RSMI_LIBRARY). DV_FAKE_RSMI=none: no GPU;
 * =initfail: rsmi_init fails. Readings: busy 55 %, memory busy 20 %,
 * 16 of 64 GiB VRAM, edge 48.5 C, 300.5 W. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT int rsmi_init(uint64_t flags);
EXPORT int rsmi_shut_down(void);
EXPORT int rsmi_status_string(int st, const char **s);
EXPORT int rsmi_num_monitor_devices(uint32_t *n);
EXPORT int rsmi_dev_busy_percent_get(uint32_t i, uint32_t *p);
EXPORT int rsmi_dev_memory_busy_percent_get(uint32_t i, uint32_t *p);
EXPORT int rsmi_dev_memory_total_get(uint32_t i, int type, uint64_t *b);
EXPORT int rsmi_dev_memory_usage_get(uint32_t i, int type, uint64_t *b);
EXPORT int rsmi_dev_temp_metric_get(uint32_t i, uint32_t sensor, int metric,
                                    int64_t *t);
EXPORT int rsmi_dev_power_ave_get(uint32_t i, uint32_t sensor, uint64_t *uw);
EXPORT int rsmi_dev_name_get(uint32_t i, char *name, size_t len);
EXPORT int rsmi_dev_unique_id_get(uint32_t i, uint64_t *id);

static int is(const char *name)
{
    const char *s = getenv("DV_FAKE_RSMI");
    return s && strcmp(s, name) == 0;
}

int rsmi_init(uint64_t flags)
{
    (void)flags;
    return is("initfail") ? 8 : 0; /* RSMI_STATUS_INIT_ERROR */
}

int rsmi_shut_down(void)
{
    return 0;
}

int rsmi_status_string(int st, const char **s)
{
    *s = st == 8 ? "RSMI_STATUS_INIT_ERROR: fake init failure" : "fake status";
    return 0;
}

int rsmi_num_monitor_devices(uint32_t *n)
{
    *n = is("none") ? 0 : 1;
    return 0;
}

int rsmi_dev_busy_percent_get(uint32_t i, uint32_t *p)
{
    *p = 55;
    return i == 0 ? 0 : 1;
}

int rsmi_dev_memory_busy_percent_get(uint32_t i, uint32_t *p)
{
    *p = 20;
    return i == 0 ? 0 : 1;
}

int rsmi_dev_memory_total_get(uint32_t i, int type, uint64_t *b)
{
    *b = 64ull << 30;
    return i == 0 && type == 0 ? 0 : 1;
}

int rsmi_dev_memory_usage_get(uint32_t i, int type, uint64_t *b)
{
    *b = 16ull << 30;
    return i == 0 && type == 0 ? 0 : 1;
}

int rsmi_dev_temp_metric_get(uint32_t i, uint32_t sensor, int metric,
                             int64_t *t)
{
    *t = 48500;
    return i == 0 && sensor == 0 && metric == 0 ? 0 : 2;
}

int rsmi_dev_power_ave_get(uint32_t i, uint32_t sensor, uint64_t *uw)
{
    *uw = 300500000;
    return i == 0 && sensor == 0 ? 0 : 1;
}

int rsmi_dev_name_get(uint32_t i, char *name, size_t len)
{
    snprintf(name, len, "Fake AMD GPU (test double)");
    return i == 0 ? 0 : 1;
}

int rsmi_dev_unique_id_get(uint32_t i, uint64_t *id)
{
    *id = 0xfa4e;
    return i == 0 ? 0 : 1;
}
