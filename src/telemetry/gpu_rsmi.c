/* AMD GPUs through ROCm SMI (librocm_smi64), loaded with dlopen the same
 * way as NVML: no link-time dependency, rsmi_init once per sampler, names
 * and unique ids read once. The functions used are declared here from ROCm
 * SMI's documented C API. */
#include "telemetry/internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* From ROCm SMI's API (rocm_smi.h). */
typedef int rsmi_status_t;
enum {
    RSMI_STATUS_SUCCESS = 0,
    RSMI_STATUS_NOT_SUPPORTED = 2,
    RSMI_STATUS_PERMISSION = 4,
    RSMI_STATUS_NOT_YET_IMPLEMENTED = 9,
    RSMI_STATUS_NO_DATA = 14,
    RSMI_MEM_TYPE_VRAM = 0,
    RSMI_TEMP_TYPE_EDGE = 0,
    RSMI_TEMP_TYPE_JUNCTION = 1,
    RSMI_TEMP_CURRENT = 0,
};

typedef struct rsmi_api {
    rsmi_status_t (*init)(uint64_t);
    rsmi_status_t (*shut_down)(void);
    rsmi_status_t (*status_string)(rsmi_status_t, const char **);
    rsmi_status_t (*count)(uint32_t *);
    rsmi_status_t (*busy)(uint32_t, uint32_t *);
    rsmi_status_t (*mem_busy)(uint32_t, uint32_t *); /* optional */
    rsmi_status_t (*mem_total)(uint32_t, int, uint64_t *);
    rsmi_status_t (*mem_used)(uint32_t, int, uint64_t *);
    rsmi_status_t (*temp)(uint32_t, uint32_t, int, int64_t *);
    rsmi_status_t (*power)(uint32_t, uint32_t, uint64_t *); /* uW */
    rsmi_status_t (*name)(uint32_t, char *, size_t);
    rsmi_status_t (*unique_id)(uint32_t, uint64_t *); /* optional */
} rsmi_api_t;

typedef struct rsmi_dev {
    uint32_t index;
    int lost;
    int temp_sensor;
    char name[DV_TELEM_NAME_MAX];
    char uuid[DV_TELEM_NAME_MAX];
} rsmi_dev_t;

typedef struct rsmi_lib {
    dv__gpu_lib_t base;
    void *dl;
    rsmi_api_t f;
    int ndev;
    rsmi_dev_t dev[DV_TELEM_MAX_GPUS];
} rsmi_lib_t;

static const char *errstr(const rsmi_lib_t *g, rsmi_status_t rc)
{
    const char *s = NULL;
    if (!g->f.status_string || g->f.status_string(rc, &s) != 0 || !s)
        return "unknown ROCm SMI error";
    return s;
}

/* Resolve every symbol; returns the first missing name, or NULL. */
static const char *load_symbols(rsmi_lib_t *g)
{
    static const dv__gpu_sym_t syms[] = {
        {"rsmi_init", offsetof(rsmi_api_t, init), 0},
        {"rsmi_shut_down", offsetof(rsmi_api_t, shut_down), 0},
        {"rsmi_status_string", offsetof(rsmi_api_t, status_string), 1},
        {"rsmi_num_monitor_devices", offsetof(rsmi_api_t, count), 0},
        {"rsmi_dev_busy_percent_get", offsetof(rsmi_api_t, busy), 0},
        {"rsmi_dev_memory_busy_percent_get", offsetof(rsmi_api_t, mem_busy), 1},
        {"rsmi_dev_memory_total_get", offsetof(rsmi_api_t, mem_total), 0},
        {"rsmi_dev_memory_usage_get", offsetof(rsmi_api_t, mem_used), 0},
        {"rsmi_dev_temp_metric_get", offsetof(rsmi_api_t, temp), 0},
        {"rsmi_dev_power_ave_get", offsetof(rsmi_api_t, power), 0},
        {"rsmi_dev_name_get", offsetof(rsmi_api_t, name), 0},
        {"rsmi_dev_unique_id_get", offsetof(rsmi_api_t, unique_id), 1},
    };
    return dv__telem_gpu_bind(g->dl, syms, sizeof(syms) / sizeof(syms[0]),
                              &g->f);
}

static int quiet(rsmi_status_t rc)
{
    return rc == RSMI_STATUS_NOT_SUPPORTED || rc == RSMI_STATUS_PERMISSION ||
           rc == RSMI_STATUS_NOT_YET_IMPLEMENTED || rc == RSMI_STATUS_NO_DATA;
}

static void find_devices(rsmi_lib_t *g, uint32_t n)
{
    for (uint32_t i = 0; i < n && g->ndev < DV_TELEM_MAX_GPUS; i++) {
        rsmi_dev_t *d = &g->dev[g->ndev++];
        char name[DV_TELEM_NAME_MAX] = "";
        uint64_t id;
        int64_t t;
        d->index = i;
        if (g->f.name(i, name, sizeof(name)) != RSMI_STATUS_SUCCESS)
            snprintf(name, sizeof(name), "AMD GPU");
        name[sizeof(name) - 1] = '\0';
        dv__telem_copy_printable(d->name, sizeof(d->name), name);
        if (g->f.unique_id && g->f.unique_id(i, &id) == RSMI_STATUS_SUCCESS)
            snprintf(d->uuid, sizeof(d->uuid), "0x%016llx",
                     (unsigned long long)id);
        /* Some boards have no edge sensor: fall back to the junction. */
        d->temp_sensor = RSMI_TEMP_TYPE_EDGE;
        if (g->f.temp(i, RSMI_TEMP_TYPE_EDGE, RSMI_TEMP_CURRENT, &t) !=
            RSMI_STATUS_SUCCESS)
            d->temp_sensor = RSMI_TEMP_TYPE_JUNCTION;
    }
}

static int rsmi_count(const dv__gpu_lib_t *base)
{
    const rsmi_lib_t *g = (const rsmi_lib_t *)base;
    int n = 0;
    for (int i = 0; i < g->ndev; i++)
        n += !g->dev[i].lost;
    return n;
}

static void read_optional(rsmi_lib_t *g, rsmi_dev_t *d, dv_telem_gpu_t *o)
{
    uint32_t mb = 0;
    uint64_t total, used, uw;
    int64_t mc;
    if (g->f.mem_busy && g->f.mem_busy(d->index, &mb) == RSMI_STATUS_SUCCESS)
        o->util_mem = mb > 100 ? 100 : mb;
    if (g->f.mem_total(d->index, RSMI_MEM_TYPE_VRAM, &total) == 0 &&
        g->f.mem_used(d->index, RSMI_MEM_TYPE_VRAM, &used) == 0) {
        o->mem_total = total;
        o->mem_used = used;
        o->valid |= DV_TELEM_GPU_MEM;
    }
    if (g->f.temp(d->index, (uint32_t)d->temp_sensor, RSMI_TEMP_CURRENT, &mc) ==
            RSMI_STATUS_SUCCESS &&
        mc > -1000000 && mc < 1000000) {
        o->temp_c = (int32_t)(mc / 1000);
        o->valid |= DV_TELEM_GPU_TEMP;
    }
    if (g->f.power(d->index, 0, &uw) == RSMI_STATUS_SUCCESS &&
        uw / 1000 <= UINT32_MAX) {
        o->power_mw = (uint32_t)(uw / 1000);
        o->valid |= DV_TELEM_GPU_POWER;
    }
}

static void rsmi_sample(dv__gpu_lib_t *base, dv_telem_sample_t *out, char *note,
                        size_t cap)
{
    rsmi_lib_t *g = (rsmi_lib_t *)base;
    for (int i = 0; i < g->ndev && out->ngpus < DV_TELEM_MAX_GPUS; i++) {
        rsmi_dev_t *d = &g->dev[i];
        dv_telem_gpu_t *o = &out->gpus[out->ngpus];
        uint32_t busy;
        if (d->lost)
            continue;
        memset(o, 0, sizeof(*o));
        rsmi_status_t rc = g->f.busy(d->index, &busy);
        if (rc != RSMI_STATUS_SUCCESS && !quiet(rc)) {
            char text[200];
            snprintf(text, sizeof(text),
                     "rocm-smi device %u: %s (left out from now on)", d->index,
                     errstr(g, rc));
            dv__telem_note_add(note, cap, text);
            d->lost = 1;
            continue;
        }
        o->index = d->index;
        o->vendor = DV_TELEM_VENDOR_AMD;
        memcpy(o->name, d->name, sizeof(o->name));
        memcpy(o->uuid, d->uuid, sizeof(o->uuid));
        if (rc == RSMI_STATUS_SUCCESS) {
            o->util_gpu = busy > 100 ? 100 : busy;
            o->valid |= DV_TELEM_GPU_UTIL;
        }
        read_optional(g, d, o);
        out->ngpus++;
    }
}

static void rsmi_close(dv__gpu_lib_t *base)
{
    rsmi_lib_t *g = (rsmi_lib_t *)base;
    if (g->f.shut_down)
        g->f.shut_down();
    dlclose(g->dl);
    free(g);
}

static const dv__gpu_ops_t rsmi_ops = {rsmi_count, rsmi_sample, rsmi_close};

dv__gpu_lib_t *dv__telem_rsmi_open(const char *path, char *note, size_t cap,
                                   dv_error_t *err)
{
    char why[DV_TELEM_NOTE_MAX];
    (void)note;
    (void)cap;
    rsmi_lib_t *g = calloc(1, sizeof(*g));
    if (!g) {
        dv__errprintf(err, ENOMEM, "rocm-smi: out of memory");
        return NULL;
    }
    g->base.ops = &rsmi_ops;
    /* The default name, then the versioned one packages install. */
    g->dl = dv__telem_gpu_dlopen(
        path,
        strcmp(path, "librocm_smi64.so") == 0 ? "librocm_smi64.so.1" : NULL,
        why, sizeof(why));
    if (!g->dl) {
        dv__errprintf(err, ENOENT, "rocm-smi: %s", why);
        free(g);
        return NULL;
    }
    const char *missing = load_symbols(g);
    rsmi_status_t rc;
    uint32_t n = 0;
    if (missing) {
        dv__errprintf(err, ENOSYS, "rocm-smi: %s: no symbol %s", path, missing);
    } else if ((rc = g->f.init(0)) != RSMI_STATUS_SUCCESS) {
        dv__errprintf(err, EIO, "rocm-smi: %s", errstr(g, rc));
        g->f.shut_down = NULL;
    } else if ((rc = g->f.count(&n)) != RSMI_STATUS_SUCCESS) {
        dv__errprintf(err, EIO, "rocm-smi: device count: %s", errstr(g, rc));
    } else if (n == 0) {
        dv__errprintf(err, ENODEV, "rocm-smi: no GPU");
    } else {
        find_devices(g, n);
        return &g->base;
    }
    int saved = errno;
    rsmi_close(&g->base);
    errno = saved;
    return NULL;
}
