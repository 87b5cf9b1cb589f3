/* The telemetry sample record: a versioned binary layout that travels
 * through drover queues from each node's monitor to the renderer.
 *
 * Layout, version 1 (all integers little-endian, doubles as IEEE-754
 * binary64 bit patterns in a little-endian u64; "str8" is a u8 length and
 * that many printable ASCII bytes, no NUL):
 *
 *   off size field
 *     0    4 magic "DVTS"
 *     4    2 version (1)
 *     6    2 flags (0; reserved)
 *     8    8 time_ns (CLOCK_REALTIME ns since the epoch)
 *    16    4 valid (DV_TELEM_LOAD | _CPU | _MEM | _NCPU)
 *    20   32 load1, load5, load15, cpu_percent (f64)
 *    52    4 ncpus
 *    56   16 mem_used, mem_total (bytes)
 *    72    . str8 node, str8 note
 *     .    1 ngpus (0..DV_TELEM_MAX_GPUS), then per GPU:
 *            u32 index, u32 vendor, u32 valid, u32 util_gpu, u32 util_mem,
 *            u64 mem_used, u64 mem_total, i32 temp_c, u32 power_mw,
 *            str8 name, str8 uuid
 *
 * The decoder takes untrusted bytes: every length is bounded, every value
 * range-checked, trailing bytes refused. A later version may only append
 * fields; a decoder refuses versions it does not know (ENOTSUP). */
#include "telemetry/internal.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/error.h"

#define VALID_CPU_BITS \
    (DV_TELEM_LOAD | DV_TELEM_CPU | DV_TELEM_MEM | DV_TELEM_NCPU)
#define VALID_GPU_BITS                                          \
    (DV_TELEM_GPU_UTIL | DV_TELEM_GPU_MEM | DV_TELEM_GPU_TEMP | \
     DV_TELEM_GPU_POWER)

typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
} wbuf_t;

typedef struct rbuf {
    const unsigned char *p;
    size_t len, off;
    int bad;
} rbuf_t;

static void put_le(wbuf_t *w, uint64_t v, int n)
{
    if (w->len + (size_t)n > w->cap) {
        w->len = w->cap + 1; /* overflowed: reported at the end */
        return;
    }
    for (int i = 0; i < n; i++)
        w->p[w->len++] = (unsigned char)(v >> (8 * i));
}

static void put_f64(wbuf_t *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    put_le(w, v, 8);
}

static void put_str(wbuf_t *w, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    put_le(w, n, 1);
    for (size_t i = 0; i < n; i++)
        put_le(w, (unsigned char)s[i], 1);
}

static uint64_t get_le(rbuf_t *r, int n)
{
    uint64_t v = 0;
    if (r->bad || r->len - r->off < (size_t)n) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < n; i++)
        v |= (uint64_t)r->p[r->off++] << (8 * i);
    return v;
}

static double get_f64(rbuf_t *r)
{
    uint64_t v = get_le(r, 8);
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

/* A str8 into dst (cap bytes with the NUL); printable ASCII only. */
static void get_str(rbuf_t *r, char *dst, size_t cap)
{
    size_t n = (size_t)get_le(r, 1);
    dst[0] = '\0';
    if (r->bad || n >= cap || r->len - r->off < n) {
        r->bad = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = r->p[r->off + i];
        if (c < 0x20 || c >= 0x7f) {
            r->bad = 1;
            return;
        }
        dst[i] = (char)c;
    }
    dst[n] = '\0';
    r->off += n;
}

static int printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n >= cap || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

static int gpu_ok(const dv_telem_gpu_t *g)
{
    return (g->valid & ~VALID_GPU_BITS) == 0 &&
           (g->vendor == DV_TELEM_VENDOR_NVIDIA ||
            g->vendor == DV_TELEM_VENDOR_AMD) &&
           g->util_gpu <= 100 && g->util_mem <= 100 &&
           printable(g->name, sizeof(g->name)) &&
           printable(g->uuid, sizeof(g->uuid));
}

/* The ranges both sides promise; the renderers rely on them. */
static int sample_ok(const dv_telem_sample_t *s)
{
    if ((s->valid & ~VALID_CPU_BITS) != 0 || s->ngpus < 0 ||
        s->ngpus > DV_TELEM_MAX_GPUS || !printable(s->node, sizeof(s->node)) ||
        !printable(s->note, sizeof(s->note)))
        return 0;
    if (!isfinite(s->load1) || !isfinite(s->load5) || !isfinite(s->load15) ||
        s->load1 < 0 || s->load5 < 0 || s->load15 < 0 ||
        !isfinite(s->cpu_percent) || s->cpu_percent < 0 || s->cpu_percent > 100)
        return 0;
    for (int i = 0; i < s->ngpus; i++)
        if (!gpu_ok(&s->gpus[i]))
            return 0;
    return 1;
}

static void put_gpu(wbuf_t *w, const dv_telem_gpu_t *g)
{
    put_le(w, g->index, 4);
    put_le(w, g->vendor, 4);
    put_le(w, g->valid, 4);
    put_le(w, g->util_gpu, 4);
    put_le(w, g->util_mem, 4);
    put_le(w, g->mem_used, 8);
    put_le(w, g->mem_total, 8);
    put_le(w, (uint32_t)g->temp_c, 4);
    put_le(w, g->power_mw, 4);
    put_str(w, g->name, sizeof(g->name));
    put_str(w, g->uuid, sizeof(g->uuid));
}

int dv_telem_record_encode(const dv_telem_sample_t *s, void *buf, size_t cap,
                           dv_error_t *err)
{
    wbuf_t w = {buf, 0, cap};
    if (!s || !buf || !sample_ok(s))
        return dv__errprintf(err, EINVAL, "telemetry record: bad sample");
    put_le(&w, 0x53545644u, 4); /* "DVTS" */
    put_le(&w, DV_TELEM_RECORD_VERSION, 2);
    put_le(&w, 0, 2);
    put_le(&w, s->time_ns, 8);
    put_le(&w, s->valid, 4);
    put_f64(&w, s->load1);
    put_f64(&w, s->load5);
    put_f64(&w, s->load15);
    put_f64(&w, s->cpu_percent);
    put_le(&w, s->ncpus, 4);
    put_le(&w, s->mem_used, 8);
    put_le(&w, s->mem_total, 8);
    put_str(&w, s->node, sizeof(s->node));
    put_str(&w, s->note, sizeof(s->note));
    put_le(&w, (uint64_t)s->ngpus, 1);
    for (int i = 0; i < s->ngpus; i++)
        put_gpu(&w, &s->gpus[i]);
    if (w.len > cap)
        return dv__errprintf(err, ENOBUFS,
                             "telemetry record: buffer too small");
    return (int)w.len;
}

static void get_gpu(rbuf_t *r, dv_telem_gpu_t *g)
{
    g->index = (uint32_t)get_le(r, 4);
    g->vendor = (uint32_t)get_le(r, 4);
    g->valid = (uint32_t)get_le(r, 4);
    g->util_gpu = (uint32_t)get_le(r, 4);
    g->util_mem = (uint32_t)get_le(r, 4);
    g->mem_used = get_le(r, 8);
    g->mem_total = get_le(r, 8);
    g->temp_c = (int32_t)(uint32_t)get_le(r, 4);
    g->power_mw = (uint32_t)get_le(r, 4);
    get_str(r, g->name, sizeof(g->name));
    get_str(r, g->uuid, sizeof(g->uuid));
}

int dv_telem_record_decode(const void *buf, size_t len, dv_telem_sample_t *out,
                           dv_error_t *err)
{
    rbuf_t r = {buf, len, 0, 0};
    if (!buf || !out)
        return dv__errprintf(err, EINVAL, "telemetry record: no buffer");
    if (get_le(&r, 4) != 0x53545644u)
        return dv__errprintf(err, EPROTO, "telemetry record: bad magic");
    uint64_t version = get_le(&r, 2);
    if (!r.bad && version != DV_TELEM_RECORD_VERSION)
        return dv__errprintf(err, ENOTSUP,
                             "telemetry record: unknown version %u",
                             (unsigned)version);
    get_le(&r, 2);
    out->time_ns = get_le(&r, 8);
    out->valid = (uint32_t)get_le(&r, 4);
    out->load1 = get_f64(&r);
    out->load5 = get_f64(&r);
    out->load15 = get_f64(&r);
    out->cpu_percent = get_f64(&r);
    out->ncpus = (uint32_t)get_le(&r, 4);
    out->mem_used = get_le(&r, 8);
    out->mem_total = get_le(&r, 8);
    get_str(&r, out->node, sizeof(out->node));
    get_str(&r, out->note, sizeof(out->note));
    out->ngpus = (int)get_le(&r, 1);
    if (out->ngpus > DV_TELEM_MAX_GPUS)
        r.bad = 1;
    for (int i = 0; i < out->ngpus && !r.bad; i++)
        get_gpu(&r, &out->gpus[i]);
    if (r.bad || r.off != len || !sample_ok(out))
        return dv__errprintf(err, EPROTO, "telemetry record: bad bytes");
    return 0;
}
