/* The per-node monitor loop: sample every interval on absolute deadlines,
 * encode, hand the record to a callback (telemetry_full puts it on a
 * drover queue). Between samples it sleeps in clock_nanosleep, so a 1 Hz
 * monitor costs a few /proc reads and GPU calls per second. Also the
 * start-up check that a log or plot path can be written. */
#include "telemetry/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

static void add_ns(struct timespec *t, uint64_t ns)
{
    uint64_t total = (uint64_t)t->tv_nsec + ns;
    t->tv_sec += (time_t)(total / 1000000000u);
    t->tv_nsec = (long)(total % 1000000000u);
}

/* Sleep until *deadline unless stop is raised; a signal wakes it. */
static void sleep_until(const struct timespec *deadline,
                        volatile sig_atomic_t *stop)
{
    while (!(stop && *stop)) {
        int rc =
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL);
        if (rc != EINTR)
            return;
    }
}

int dv_telem_monitor_run(dv_telem_sampler_t *s, double interval_s, long count,
                         dv_telem_put_f put, void *arg,
                         volatile sig_atomic_t *stop, dv_error_t *err)
{
    if (!s || !put || !(interval_s > 0) || interval_s > 86400 || count < 0)
        return dv__errprintf(err, EINVAL, "monitor: bad arguments");
    dv_telem_sample_t *smp = malloc(sizeof(*smp));
    unsigned char *rec = malloc(DV_TELEM_RECORD_MAX);
    if (!smp || !rec) {
        free(smp);
        free(rec);
        return dv__errprintf(err, ENOMEM, "monitor: out of memory");
    }
    uint64_t step = (uint64_t)llround(interval_s * 1e9);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    int rc = 0;
    for (long n = 0; (count == 0 || n < count) && !(stop && *stop); n++) {
        if (n > 0)
            sleep_until(&next, stop);
        if (stop && *stop)
            break;
        if (dv_telem_sampler_sample(s, smp, err) < 0) {
            rc = -1;
            break;
        }
        int len = dv_telem_record_encode(smp, rec, DV_TELEM_RECORD_MAX, err);
        int r = len < 0 ? -1 : put(rec, (size_t)len, arg);
        if (r != 0) {
            if (r < 0)
                rc = len < 0 ? -1
                             : dv__errsys(err, "monitor: handing a record on");
            break;
        }
        add_ns(&next, step);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec + 1) /* fell far behind: resync */
            next = now;
    }
    int saved = errno;
    free(smp);
    free(rec);
    errno = saved;
    return rc;
}

int dv_telem_check_writable(const char *path, dv_error_t *err)
{
    struct stat st;
    if (!path || !path[0])
        return dv__errprintf(err, EINVAL, "empty path");
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return dv__errprintf(err, EISDIR, "%s: is a directory", path);
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0)
            return dv__errsys(err, "%s", path);
        close(fd);
        return 0;
    }
    if (errno != ENOENT)
        return dv__errsys(err, "%s", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return dv__errsys(err, "%s", path);
    close(fd);
    unlink(path);
    return 0;
}
