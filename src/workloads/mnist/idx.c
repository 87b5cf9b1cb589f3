/* Reading IDX files, raw or gzip-compressed (zlib reads both), with every
 * header field checked against the bytes that follow: the files come from
 * outside and a short or corrupt one must give a clear error. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/error.h"
#include "workloads/mnist/idx.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

int dv__idx_parse(const uint8_t *buf, size_t len, int ndim, dv__idx_t *out,
                  dv_error_t *err)
{
    size_t head = 4 + 4 * (size_t)ndim;
    if (ndim != 1 && ndim != 3)
        return dv__errprintf(err, EINVAL, "unsupported IDX rank %d", ndim);
    if (len < head)
        return dv__errprintf(err, EINVAL, "truncated IDX header (%zu bytes)",
                             len);
    if (buf[0] != 0 || buf[1] != 0 || buf[2] != 0x08)
        return dv__errprintf(err, EINVAL,
                             "bad IDX magic %02x%02x%02x%02x (want 000008%02x)",
                             buf[0], buf[1], buf[2], buf[3], ndim);
    if (buf[3] != ndim)
        return dv__errprintf(err, EINVAL, "IDX has %d dimensions, want %d (%s)",
                             buf[3], ndim, ndim == 3 ? "images" : "labels");
    uint32_t n = be32(buf + 4);
    size_t item = 1;
    if (ndim == 3) {
        uint32_t r = be32(buf + 8), c = be32(buf + 12);
        if (r != 28 || c != 28)
            return dv__errprintf(err, EINVAL,
                                 "IDX images are %ux%u, want 28x28", r, c);
        item = 784;
    }
    if (n == 0 || (len - head) / item != n || (len - head) % item != 0)
        return dv__errprintf(err, EINVAL,
                             "IDX header says %u items of %zu bytes, file "
                             "holds %zu bytes after the header",
                             n, item, len - head);
    if (ndim == 1)
        for (size_t i = 0; i < n; i++)
            if (buf[head + i] > 9)
                return dv__errprintf(err, EINVAL,
                                     "label %u of item %zu out of range 0-9",
                                     buf[head + i], i);
    uint8_t *data = malloc(len - head);
    if (!data)
        return dv__errprintf(err, ENOMEM, "out of memory for %zu bytes",
                             len - head);
    memcpy(data, buf + head, len - head);
    out->ndim = ndim;
    out->n = n;
    out->data = data;
    return 0;
}

/* Whole file (decompressed) into a malloc'd buffer. */
static int read_all(const char *path, uint8_t **bufp, size_t *lenp,
                    dv_error_t *err)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return dv__errsys(err, "%s", path);
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        if (len == cap) {
            if (cap >= DV_IDX_MAX_BYTES) {
                free(buf), gzclose(f);
                return dv__errprintf(err, EFBIG, "%s: larger than %u bytes",
                                     path, DV_IDX_MAX_BYTES);
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf), buf = NULL;
                break;
            }
            buf = nb, cap *= 2;
        }
        int got = gzread(f, buf + len, (unsigned)(cap - len));
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            dv__errprintf(err, EIO, "%s: %s", path, msg);
            free(buf), gzclose(f);
            return -1;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    gzclose(f);
    if (!buf)
        return dv__errprintf(err, ENOMEM, "%s: out of memory", path);
    *bufp = buf;
    *lenp = len;
    return 0;
}

int dv__idx_load(const char *path, int ndim, dv__idx_t *out, dv_error_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (read_all(path, &buf, &len, err) < 0)
        return -1;
    dv_error_t why;
    int rc = dv__idx_parse(buf, len, ndim, out, &why);
    int saved = errno;
    free(buf);
    if (rc < 0) {
        errno = saved;
        return dv__errprintf(err, saved, "%s: %s", path, why.text);
    }
    return 0;
}
