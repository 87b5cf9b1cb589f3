/* NVIDIA GPUs through NVML, loaded with dlopen("libnvidia-ml.so.1") so that
 * drover has no link-time dependency on the driver. The few NVML types and
 * functions used are declared here from NVML's documented C API. NVML is
 * initialised once per sampler; names, UUIDs and handles are read once,
 * so a sample costs four NVML calls per GPU. */
#include "telemetry/internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* From NVML's API (nvml.h): return codes and the structures used. */
typedef int nvml_return_t;
typedef struct nvml_device_st *nvml_device_t;
typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvml_utilization_t;
typedef struct {
    unsigned long long total, free, used;
} nvml_memory_t;
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvml_memory_v2_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_TEMPERATURE_GPU = 0,
    NVML_DEVICE_NAME_BUFFER_SIZE = 96,
    NVML_DEVICE_UUID_BUFFER_SIZE = 96,
};
#define NVML_MEMORY_V2 ((unsigned int)(sizeof(nvml_memory_v2_t) | (2u << 24)))

typedef struct nvml_api {
    nvml_return_t (*init)(void);
    nvml_return_t (*shutdown)(void);
    const char *(*error_string)(nvml_return_t);
    nvml_return_t (*count)(unsigned int *);
    nvml_return_t (*handle)(unsigned int, nvml_device_t *);
    nvml_return_t (*name)(nvml_device_t, char *, unsigned int);
    nvml_return_t (*uuid)(nvml_device_t, char *, unsigned int);
    nvml_return_t (*util)(nvml_device_t, nvml_utilization_t *);
    nvml_return_t (*mem)(nvml_device_t, nvml_memory_t *);
    nvml_return_t (*mem_v2)(nvml_device_t, nvml_memory_v2_t *); /* optional */
    nvml_return_t (*temp)(nvml_device_t, int, unsigned int *);
    nvml_return_t (*power)(nvml_device_t, unsigned int *);
} nvml_api_t;

typedef struct nvml_dev {
    nvml_device_t h;
    unsigned int index;
    int lost;
    char name[DV_TELEM_NAME_MAX];
    char uuid[DV_TELEM_NAME_MAX];
} nvml_dev_t;

typedef struct nvml_lib {
    dv__gpu_lib_t base;
    void *dl;
    nvml_api_t f;
    int ndev;
    nvml_dev_t dev[DV_TELEM_MAX_GPUS];
} nvml_lib_t;

static const char *errstr(const nvml_lib_t *g, nvml_return_t rc)
{
    const char *s = g->f.error_string ? g->f.error_string(rc) : NULL;
    return s ? s : "unknown NVML error";
}

/* Resolve every symbol; returns the first missing name, or NULL. */
static const char *load_symbols(nvml_lib_t *g)
{
    static const dv__gpu_sym_t syms[] = {
        {"nvmlInit_v2", offsetof(nvml_api_t, init), 0},
        {"nvmlShutdown", offsetof(nvml_api_t, shutdown), 0},
        {"nvmlErrorString", offsetof(nvml_api_t, error_string), 0},
        {"nvmlDeviceGetCount_v2", offsetof(nvml_api_t, count), 0},
        {"nvmlDeviceGetHandleByIndex_v2", offsetof(nvml_api_t, handle), 0},
        {"nvmlDeviceGetName", offsetof(nvml_api_t, name), 0},
        {"nvmlDeviceGetUUID", offsetof(nvml_api_t, uuid), 0},
        {"nvmlDeviceGetUtilizationRates", offsetof(nvml_api_t, util), 0},
        {"nvmlDeviceGetMemoryInfo", offsetof(nvml_api_t, mem), 0},
        {"nvmlDeviceGetMemoryInfo_v2", offsetof(nvml_api_t, mem_v2), 1},
        {"nvmlDeviceGetTemperature", offsetof(nvml_api_t, temp), 0},
        {"nvmlDeviceGetPowerUsage", offsetof(nvml_api_t, power), 0},
    };
    return dv__telem_gpu_bind(g->dl, syms, sizeof(syms) / sizeof(syms[0]),
                              &g->f);
}

/* Handles, names and UUIDs, once. A device that fails here is noted. */
static void find_devices(nvml_lib_t *g, unsigned int n, char *note, size_t cap)
{
    for (unsigned int i = 0; i < n && g->ndev < DV_TELEM_MAX_GPUS; i++) {
        nvml_dev_t *d = &g->dev[g->ndev];
        char name[NVML_DEVICE_NAME_BUFFER_SIZE] = "";
        char uuid[NVML_DEVICE_UUID_BUFFER_SIZE] = "";
        nvml_return_t rc = g->f.handle(i, &d->h);
        if (rc != NVML_SUCCESS) {
            char text[160];
            snprintf(text, sizeof(text), "nvml device %u: unavailable: %s", i,
                     errstr(g, rc));
            dv__telem_note_add(note, cap, text);
            continue;
        }
        if (g->f.name(d->h, name, sizeof(name)) != NVML_SUCCESS)
            snprintf(name, sizeof(name), "NVIDIA GPU");
        if (g->f.uuid(d->h, uuid, sizeof(uuid)) != NVML_SUCCESS)
            uuid[0] = '\0';
        name[sizeof(name) - 1] = uuid[sizeof(uuid) - 1] = '\0';
        dv__telem_copy_printable(d->name, sizeof(d->name), name);
        dv__telem_copy_printable(d->uuid, sizeof(d->uuid), uuid);
        d->index = i;
        g->ndev++;
    }
}

static int nvml_count(const dv__gpu_lib_t *base)
{
    const nvml_lib_t *g = (const nvml_lib_t *)base;
    int n = 0;
    for (int i = 0; i < g->ndev; i++)
        n += !g->dev[i].lost;
    return n;
}

/* Per-field outcome: 1 read, 0 not supported (quietly absent), -1 the
 * device failed (noted and dropped). */
static int outcome(nvml_lib_t *g, nvml_dev_t *d, nvml_return_t rc,
                   const char *what, char *note, size_t cap)
{
    if (rc == NVML_SUCCESS)
        return 1;
    if (rc == NVML_ERROR_NOT_SUPPORTED || rc == NVML_ERROR_NO_PERMISSION)
        return 0;
    char text[200];
    snprintf(text, sizeof(text), "nvml device %u %s: %s%s", d->index, what,
             errstr(g, rc),
             rc == NVML_ERROR_GPU_IS_LOST ? " (left out from now on)" : "");
    dv__telem_note_add(note, cap, text);
    if (rc == NVML_ERROR_GPU_IS_LOST)
        d->lost = 1;
    return -1;
}

static void read_memory(nvml_lib_t *g, nvml_dev_t *d, dv_telem_gpu_t *o,
                        char *note, size_t cap)
{
    if (g->f.mem_v2) {
        nvml_memory_v2_t m = {.version = NVML_MEMORY_V2};
        nvml_return_t rc = g->f.mem_v2(d->h, &m);
        if (rc == NVML_SUCCESS) {
            o->mem_used = m.used;
            o->mem_total = m.total;
            o->valid |= DV_TELEM_GPU_MEM;
            return;
        }
        if (rc != NVML_ERROR_NOT_SUPPORTED &&
            rc != NVML_ERROR_FUNCTION_NOT_FOUND)
            g->f.mem_v2 = NULL; /* e.g. a version mismatch: use v1 */
    }
    nvml_memory_t m;
    if (outcome(g, d, g->f.mem(d->h, &m), "memory", note, cap) > 0) {
        o->mem_used = m.used;
        o->mem_total = m.total;
        o->valid |= DV_TELEM_GPU_MEM;
    }
}

static void read_device(nvml_lib_t *g, nvml_dev_t *d, dv_telem_gpu_t *o,
                        char *note, size_t cap)
{
    nvml_utilization_t u;
    unsigned int t, mw;
    memset(o, 0, sizeof(*o));
    o->index = d->index;
    o->vendor = DV_TELEM_VENDOR_NVIDIA;
    memcpy(o->name, d->name, sizeof(o->name));
    memcpy(o->uuid, d->uuid, sizeof(o->uuid));
    if (outcome(g, d, g->f.util(d->h, &u), "utilization", note, cap) > 0) {
        o->util_gpu = u.gpu > 100 ? 100 : u.gpu;
        o->util_mem = u.memory > 100 ? 100 : u.memory;
        o->valid |= DV_TELEM_GPU_UTIL;
    }
    if (d->lost)
        return;
    read_memory(g, d, o, note, cap);
    if (d->lost)
        return;
    if (outcome(g, d, g->f.temp(d->h, NVML_TEMPERATURE_GPU, &t), "temperature",
                note, cap) > 0) {
        o->temp_c = (int32_t)(t > 1000 ? 1000 : t);
        o->valid |= DV_TELEM_GPU_TEMP;
    }
    if (!d->lost &&
        outcome(g, d, g->f.power(d->h, &mw), "power", note, cap) > 0) {
        o->power_mw = mw;
        o->valid |= DV_TELEM_GPU_POWER;
    }
}

static void nvml_sample(dv__gpu_lib_t *base, dv_telem_sample_t *out, char *note,
                        size_t cap)
{
    nvml_lib_t *g = (nvml_lib_t *)base;
    for (int i = 0; i < g->ndev && out->ngpus < DV_TELEM_MAX_GPUS; i++) {
        nvml_dev_t *d = &g->dev[i];
        if (d->lost)
            continue;
        dv_telem_gpu_t *o = &out->gpus[out->ngpus];
        read_device(g, d, o, note, cap);
        if (!d->lost)
            out->ngpus++;
    }
}

static void nvml_close(dv__gpu_lib_t *base)
{
    nvml_lib_t *g = (nvml_lib_t *)base;
    if (g->f.shutdown)
        g->f.shutdown();
    dlclose(g->dl);
    free(g);
}

static const dv__gpu_ops_t nvml_ops = {nvml_count, nvml_sample, nvml_close};

dv__gpu_lib_t *dv__telem_nvml_open(const char *path, char *note, size_t cap,
                                   dv_error_t *err)
{
    nvml_lib_t *g = calloc(1, sizeof(*g));
    if (!g) {
        dv__errprintf(err, ENOMEM, "nvml: out of memory");
        return NULL;
    }
    g->base.ops = &nvml_ops;
    char why[DV_TELEM_NOTE_MAX];
    g->dl = dv__telem_gpu_dlopen(path, NULL, why, sizeof(why));
    if (!g->dl) {
        dv__errprintf(err, ENOENT, "nvml: %s", why);
        free(g);
        return NULL;
    }
    const char *missing = load_symbols(g);
    nvml_return_t rc;
    unsigned int n = 0;
    if (missing) {
        dv__errprintf(err, ENOSYS, "nvml: %s: no symbol %s", path, missing);
    } else if ((rc = g->f.init()) != NVML_SUCCESS) {
        dv__errprintf(err, EIO, "nvml: %s", errstr(g, rc));
        g->f.shutdown = NULL; /* nothing to shut down */
    } else if ((rc = g->f.count(&n)) != NVML_SUCCESS) {
        dv__errprintf(err, EIO, "nvml: device count: %s", errstr(g, rc));
    } else {
        why[0] = '\0';
        find_devices(g, n, why, sizeof(why));
        if (g->ndev > 0) {
            if (why[0])
                dv__telem_note_add(note, cap, why);
            return &g->base;
        }
        dv__errprintf(err, ENODEV, "nvml: %s", why[0] ? why : "no GPU");
    }
    int saved = errno;
    nvml_close(&g->base);
    errno = saved;
    return NULL;
}
