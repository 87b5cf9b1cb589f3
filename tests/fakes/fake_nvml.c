/* TEST DOUBLE of libnvidia-ml (NVML), for drover's telemetry tests only:
 * it reports scripted GPUs and talks to no driver. The samplers load it
 * through the same dlopen path as the real library (DROVER_NVML_LIBRARY).
 *
 * The script is the environment variable DV_FAKE_NVML, read at nvmlInit:
 *   two       two GPUs with fixed readings (the default)
 *   none      NVML works, no GPU
 *   onefail   two GPUs; device 1's handle fails (NVML_ERROR_UNKNOWN)
 *   lost      two GPUs; device 1 is lost (NVML_ERROR_GPU_IS_LOST) from
 *             its third utilisation read on
 *   initfail  nvmlInit fails (NVML_ERROR_DRIVER_NOT_LOADED)
 *   nopower   two GPUs; power reads are NVML_ERROR_NOT_SUPPORTED
 *   thread    two GPUs; the first nvmlInit starts a thread that unblocks
 *             every signal and lives until the process exits, as the real
 *             library's threads may: a process-directed signal the caller
 *             blocked (SIGCHLD) is then taken, and lost, by that thread.
 *             (Use the copy linked with -z nodelete, libdv_fake_nvml_thread,
 *             so that dlclose keeps its code.)
 * DV_FAKE_NVML_COUNTS, when set, names a file where nvmlInit and
 * nvmlShutdown calls are counted ("init N shutdown M").
 * DV_FAKE_NVML_MASK, when set, names a file where nvmlInit writes whether
 * its caller had SIGCHLD, SIGINT, SIGTERM and SIGHUP blocked ("blocked" or
 * "unblocked"): the mask a thread the library starts would inherit. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fake_dev *nvmlDevice_t;
typedef struct {
    unsigned int gpu, memory;
} fake_util_t;
typedef struct {
    unsigned long long total, free, used;
} fake_mem_t;

struct fake_dev {
    int index;
};

static struct fake_dev devs[2] = {{0}, {1}};
static char script[32];
static int ninit, nshutdown, util_reads[2];

#define EXPORT __attribute__((visibility("default")))

EXPORT int nvmlInit_v2(void);
EXPORT int nvmlShutdown(void);
EXPORT const char *nvmlErrorString(int rc);
EXPORT int nvmlDeviceGetCount_v2(unsigned int *n);
EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d);
EXPORT int nvmlDeviceGetName(nvmlDevice_t d, char *buf, unsigned int len);
EXPORT int nvmlDeviceGetUUID(nvmlDevice_t d, char *buf, unsigned int len);
EXPORT int nvmlDeviceGetUtilizationRates(nvmlDevice_t d, fake_util_t *u);
EXPORT int nvmlDeviceGetMemoryInfo(nvmlDevice_t d, fake_mem_t *m);
EXPORT int nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor,
                                    unsigned int *t);
EXPORT int nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw);

static int is(const char *name)
{
    return strcmp(script, name) == 0;
}

static void write_counts(void)
{
    const char *path = getenv("DV_FAKE_NVML_COUNTS");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f) {
        fprintf(f, "init %d shutdown %d\n", ninit, nshutdown);
        fclose(f);
    }
}

static void *signal_sink(void *arg)
{
    sigset_t none;
    (void)arg;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    for (;;)
        pause();
    return NULL;
}

static void start_thread(void)
{
    static int started;
    pthread_t t;
    if (started++)
        return;
    if (pthread_create(&t, NULL, signal_sink, NULL) == 0)
        pthread_detach(t);
}

static void write_mask(void)
{
    const char *path = getenv("DV_FAKE_NVML_MASK");
    sigset_t cur;
    if (!path || pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0)
        return;
    int all = sigismember(&cur, SIGCHLD) == 1 &&
              sigismember(&cur, SIGINT) == 1 &&
              sigismember(&cur, SIGTERM) == 1 && sigismember(&cur, SIGHUP) == 1;
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s\n", all ? "blocked" : "unblocked");
        fclose(f);
    }
}

int nvmlInit_v2(void)
{
    const char *s = getenv("DV_FAKE_NVML");
    snprintf(script, sizeof(script), "%s", s && s[0] ? s : "two");
    ninit++;
    util_reads[0] = util_reads[1] = 0;
    write_counts();
    write_mask();
    if (is("thread"))
        start_thread();
    return is("initfail") ? 9 : 0; /* NVML_ERROR_DRIVER_NOT_LOADED */
}

int nvmlShutdown(void)
{
    nshutdown++;
    write_counts();
    return 0;
}

const char *nvmlErrorString(int rc)
{
    switch (rc) {
    case 0:
        return "Success";
    case 3:
        return "Not Supported";
    case 9:
        return "Driver Not Loaded";
    case 15:
        return "GPU is lost";
    default:
        return "Unknown Error";
    }
}

int nvmlDeviceGetCount_v2(unsigned int *n)
{
    *n = is("none") ? 0 : 2;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d)
{
    if (i >= 2 || is("none"))
        return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    if (i == 1 && is("onefail"))
        return 999; /* NVML_ERROR_UNKNOWN */
    *d = &devs[i];
    return 0;
}

int nvmlDeviceGetName(nvmlDevice_t d, char *buf, unsigned int len)
{
    snprintf(buf, len, "Fake GPU %d (test double)", d->index);
    return 0;
}

int nvmlDeviceGetUUID(nvmlDevice_t d, char *buf, unsigned int len)
{
    snprintf(buf, len, "GPU-fa4e0000-0000-0000-0000-00000000000%d", d->index);
    return 0;
}

int nvmlDeviceGetUtilizationRates(nvmlDevice_t d, fake_util_t *u)
{
    if (is("lost") && d->index == 1 && ++util_reads[1] > 2)
        return 15; /* NVML_ERROR_GPU_IS_LOST */
    u->gpu = d->index == 0 ? 9 : 87;
    u->memory = d->index == 0 ? 3 : 41;
    return 0;
}

int nvmlDeviceGetMemoryInfo(nvmlDevice_t d, fake_mem_t *m)
{
    m->total = 80ull << 30;
    m->used = d->index == 0 ? 1ull << 30 : 60ull << 30;
    m->free = m->total - m->used;
    return 0;
}

int nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t)
{
    if (sensor != 0)
        return 2;
    *t = d->index == 0 ? 41 : 67;
    return 0;
}

int nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw)
{
    if (is("nopower"))
        return 3; /* NVML_ERROR_NOT_SUPPORTED */
    *mw = d->index == 0 ? 71234 : 402500;
    return 0;
}
