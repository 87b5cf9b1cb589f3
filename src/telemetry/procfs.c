/* /proc readers of the telemetry samplers: load average, CPU time
 * counters and memory. Each takes a root directory so that tests can point
 * it at a fixture tree, and each treats odd text as "unknown", never as a
 * crash: the sampler then clears the field's valid bit. */
#include "telemetry/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long dv__telem_read_file(const char *root, const char *name, char *buf,
                         size_t cap)
{
    char path[4096];
    if (cap == 0 || snprintf(path, sizeof(path), "%s/%s", root, name) >=
                        (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (long)len;
}

long dv__telem_read_kept(const char *root, dv__proc_file_t *f, char *buf,
                         size_t cap)
{
    char path[4096];
    if (cap == 0) {
        errno = EINVAL;
        return -1;
    }
    if (f->fd < 0) {
        if (snprintf(path, sizeof(path), "%s/%s", root, f->name) >=
            (int)sizeof(path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        f->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0)
            return -1;
    }
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = pread(f->fd, buf + len, cap - 1 - len, (off_t)len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            dv__telem_close_kept(f);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return (long)len;
}

void dv__telem_close_kept(dv__proc_file_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

int dv__telem_parse_loadavg(const char *text, double out[3])
{
    const char *p = text;
    for (int i = 0; i < 3; i++) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno == ERANGE || !isfinite(v) || v < 0 ||
            (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\0')) {
            errno = EPROTO;
            return -1;
        }
        out[i] = v;
        p = end;
    }
    return 0;
}

/* Parse up to 8 unsigned counters after "cpu "; at least 4 are needed. */
static int parse_cpu_line(const char *p, dv__cpu_times_t *out)
{
    uint64_t v[8] = {0};
    int n = 0;
    while (n < 8) {
        while (*p == ' ')
            p++;
        if (*p < '0' || *p > '9')
            break;
        char *end;
        errno = 0;
        v[n++] = strtoull(p, &end, 10);
        if (errno == ERANGE)
            return -1;
        p = end;
    }
    if (n < 4)
        return -1;
    /* user nice system idle iowait irq softirq steal: guest time is
     * already counted in user. */
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (total + v[i] < total)
            return -1;
        total += v[i];
    }
    out->total = total;
    out->busy = total - v[3] - v[4];
    return 0;
}

int dv__telem_parse_stat(const char *text, dv__cpu_times_t *out)
{
    if (strncmp(text, "cpu ", 4) != 0 || parse_cpu_line(text + 4, out) < 0) {
        errno = EPROTO;
        return -1;
    }
    uint32_t ncpus = 0;
    for (const char *p = strchr(text, '\n'); p; p = strchr(p + 1, '\n')) {
        if (strncmp(p + 1, "cpu", 3) != 0)
            break;
        if (p[4] >= '0' && p[4] <= '9')
            ncpus++;
    }
    out->ncpus = ncpus;
    return 0;
}

double dv__telem_cpu_percent(const dv__cpu_times_t *a, const dv__cpu_times_t *b)
{
    if (b->total <= a->total || b->busy < a->busy)
        return -1;
    double pct =
        100.0 * (double)(b->busy - a->busy) / (double)(b->total - a->total);
    return pct > 100.0 ? 100.0 : pct;
}

/* Value in kB of "Key:   123 kB"; -1 when absent or odd. */
static int meminfo_kb(const char *text, const char *key, uint64_t *kb)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p;
         p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, key, klen) != 0 || p[klen] != ':')
            continue;
        const char *q = p + klen + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q < '0' || *q > '9')
            return -1;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(q, &end, 10);
        if (errno == ERANGE || v > UINT64_MAX / 1024)
            return -1;
        *kb = v;
        return 0;
    }
    return -1;
}

int dv__telem_parse_meminfo(const char *text, uint64_t *total, uint64_t *used)
{
    uint64_t t, avail, fr, buf, cached;
    if (meminfo_kb(text, "MemTotal", &t) < 0)
        goto bad;
    if (meminfo_kb(text, "MemAvailable", &avail) < 0) {
        if (meminfo_kb(text, "MemFree", &fr) < 0 ||
            meminfo_kb(text, "Buffers", &buf) < 0 ||
            meminfo_kb(text, "Cached", &cached) < 0)
            goto bad;
        avail = fr + buf + cached;
    }
    if (avail > t)
        goto bad;
    *total = t * 1024;
    *used = (t - avail) * 1024;
    return 0;
bad:
    errno = EPROTO;
    return -1;
}

void dv__telem_copy_printable(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    if (cap == 0)
        return;
    for (; src && src[i] && i < cap - 1; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
    }
    dst[i] = '\0';
}

void dv__telem_note_add(char *note, size_t cap, const char *text)
{
    size_t len = strnlen(note, cap);
    if (len + 1 >= cap)
        return;
    snprintf(note + len, cap - len, "%s%s", len ? "; " : "", text);
}
