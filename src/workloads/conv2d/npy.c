/* npy: reading and writing NumPy .npy files of 2-D arrays.
 *
 * The header is a Python dict literal; this parses the subset NumPy
 * writes ('descr' a type string, 'fortran_order' a bool, 'shape' a tuple
 * of ints, in any order, with either quote style) and refuses anything
 * else with a reason. Sizes are checked against the bytes present before
 * anything is allocated, so a header that lies cannot cause a large
 * allocation or a read past the end. */
#include "workloads/conv2d/npy.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_DIMS 32

struct header {
    char order; /* '<', '>', '|' or '=' */
    char kind;  /* 'f', 'i', 'u', 'b', ... */
    size_t itemsize;
    int fortran;
    size_t shape[NPY_MAX_DIMS];
    int ndim;
    int seen; /* bit 0 descr, 1 fortran_order, 2 shape */
};

struct cursor {
    const char *s;
    size_t n, i;
};

static void skip_ws(struct cursor *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' ||
                           c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

/* Consume ch (after blanks); 1 when it was there. */
static int eat(struct cursor *c, char ch)
{
    skip_ws(c);
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return 1;
    }
    return 0;
}

static int parse_string(struct cursor *c, char *out, size_t max)
{
    skip_ws(c);
    if (c->i >= c->n || (c->s[c->i] != '\'' && c->s[c->i] != '"'))
        return -1;
    char q = c->s[c->i++];
    size_t k = 0;
    while (c->i < c->n && c->s[c->i] != q) {
        char ch = c->s[c->i++];
        if (ch == '\\' || k + 1 >= max)
            return -1;
        out[k++] = ch;
    }
    if (c->i >= c->n)
        return -1;
    c->i++;
    out[k] = '\0';
    return 0;
}

static int parse_bool(struct cursor *c, int *out)
{
    skip_ws(c);
    const char *p = c->s + c->i;
    size_t left = c->n - c->i;
    if (left >= 4 && memcmp(p, "True", 4) == 0) {
        c->i += 4;
        *out = 1;
    } else if (left >= 5 && memcmp(p, "False", 5) == 0) {
        c->i += 5;
        *out = 0;
    } else {
        return -1;
    }
    return 0;
}

/* A non-negative integer (Python 2 files may add an 'L'). */
static int parse_size(struct cursor *c, size_t *out, dv_error_t *err)
{
    skip_ws(c);
    size_t v = 0, start = c->i;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        size_t d = (size_t)(c->s[c->i++] - '0');
        if (v > (SIZE_MAX - d) / 10)
            return dv__errprintf(err, EINVAL, "shape value too large");
        v = v * 10 + d;
    }
    if (c->i == start)
        return dv__errprintf(err, EINVAL, "bad shape in header");
    if (c->i < c->n && c->s[c->i] == 'L')
        c->i++;
    *out = v;
    return 0;
}

static int parse_shape(struct cursor *c, struct header *h, dv_error_t *err)
{
    if (!eat(c, '('))
        return dv__errprintf(err, EINVAL, "bad shape in header");
    h->ndim = 0;
    while (!eat(c, ')')) {
        size_t v = 0;
        if (parse_size(c, &v, err) < 0)
            return -1;
        if (h->ndim >= NPY_MAX_DIMS)
            return dv__errprintf(err, EINVAL, "more than %d dimensions",
                                 NPY_MAX_DIMS);
        h->shape[h->ndim++] = v;
        if (!eat(c, ',')) {
            if (!eat(c, ')'))
                return dv__errprintf(err, EINVAL, "bad shape in header");
            break;
        }
    }
    return 0;
}

static int parse_descr(struct cursor *c, struct header *h, dv_error_t *err)
{
    char d[32];
    if (parse_string(c, d, sizeof(d)) < 0)
        return dv__errprintf(err, EINVAL,
                             "unsupported dtype (not a simple type string)");
    if (strchr("<>|=", d[0]) == NULL || d[1] == '\0')
        return dv__errprintf(err, EINVAL, "unsupported dtype '%s'", d);
    h->order = d[0];
    h->kind = d[1];
    if (h->kind == 'O')
        return dv__errprintf(err, EINVAL, "object arrays are not supported");
    if (h->kind == 'c')
        return dv__errprintf(err, EINVAL, "complex arrays are not supported");
    char *end;
    errno = 0;
    unsigned long size = strtoul(d + 2, &end, 10);
    int ok = d[2] >= '0' && d[2] <= '9' && *end == '\0' && errno == 0;
    if (ok && h->kind == 'f')
        ok = size == 2 || size == 4 || size == 8;
    else if (ok && (h->kind == 'i' || h->kind == 'u'))
        ok = size == 1 || size == 2 || size == 4 || size == 8;
    else if (ok)
        ok = h->kind == 'b' && size == 1;
    if (!ok)
        return dv__errprintf(err, EINVAL, "unsupported dtype '%s'", d);
    h->itemsize = size;
    return 0;
}

static int parse_entry(struct cursor *c, struct header *h, dv_error_t *err)
{
    char key[32];
    if (parse_string(c, key, sizeof(key)) < 0 || !eat(c, ':'))
        return dv__errprintf(err, EINVAL, "header is not a dict of strings");
    int bit = strcmp(key, "descr") == 0           ? 1
              : strcmp(key, "fortran_order") == 0 ? 2
              : strcmp(key, "shape") == 0         ? 4
                                                  : 0;
    if (bit == 0)
        return dv__errprintf(err, EINVAL, "unexpected key '%s' in header", key);
    if (h->seen & bit)
        return dv__errprintf(err, EINVAL, "key '%s' twice in header", key);
    h->seen |= bit;
    if (bit == 1)
        return parse_descr(c, h, err);
    if (bit == 2)
        return parse_bool(c, &h->fortran) < 0
                   ? dv__errprintf(err, EINVAL, "bad fortran_order in header")
                   : 0;
    return parse_shape(c, h, err);
}

static int parse_header(const char *s, size_t n, struct header *h,
                        dv_error_t *err)
{
    struct cursor c = {s, n, 0};
    memset(h, 0, sizeof(*h));
    if (!eat(&c, '{'))
        return dv__errprintf(err, EINVAL, "header is not a dict");
    while (!eat(&c, '}')) {
        if (parse_entry(&c, h, err) < 0)
            return -1;
        if (!eat(&c, ',')) {
            if (!eat(&c, '}'))
                return dv__errprintf(err, EINVAL, "bad header syntax");
            break;
        }
    }
    if (h->seen != 7)
        return dv__errprintf(err, EINVAL, "header lacks %s",
                             !(h->seen & 1)   ? "'descr'"
                             : !(h->seen & 2) ? "'fortran_order'"
                                              : "'shape'");
    return 0;
}

static void shape_text(const struct header *h, char *buf, size_t max)
{
    size_t k = (size_t)snprintf(buf, max, "(");
    for (int d = 0; d < h->ndim && k < max; d++)
        k += (size_t)snprintf(buf + k, max - k, "%s%zu", d ? ", " : "",
                              h->shape[d]);
    if (k < max)
        snprintf(buf + k, max - k, h->ndim == 1 ? ",)" : ")");
}

/* The bytes of data h promises; 0 when check_size refuses h whatever the
 * data (not 2-D, empty, too large). */
static size_t promised_size(const struct header *h)
{
    if (h->ndim != 2 || !h->shape[0] || !h->shape[1] ||
        h->shape[0] > SIZE_MAX / h->shape[1] ||
        h->shape[0] * h->shape[1] > SIZE_MAX / 8)
        return 0;
    return h->shape[0] * h->shape[1] * h->itemsize;
}

/* The size checks: 2-D, not empty, bytes that fit and match. */
static int check_size(const struct header *h, size_t data_len, dv_error_t *err)
{
    char shape[64];
    shape_text(h, shape, sizeof(shape));
    if (h->ndim != 2)
        return dv__errprintf(err, EINVAL, "%d-D array of shape %s, need 2-D",
                             h->ndim, shape);
    if (h->shape[0] == 0 || h->shape[1] == 0)
        return dv__errprintf(err, EINVAL, "empty array of shape %s", shape);
    size_t want = promised_size(h);
    if (want == 0)
        return dv__errprintf(err, EINVAL, "shape %s is too large", shape);
    if (want != data_len)
        return dv__errprintf(err, EINVAL,
                             "header says %zu bytes of data for shape %s, "
                             "file has %zu",
                             want, shape, data_len);
    return 0;
}

static int host_is_big(void)
{
    return __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
}

static double half_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1f;
    double m = h & 0x3ff, v;
    if (e == 0)
        v = m * 0x1.0p-24;
    else if (e == 31)
        v = m ? (double)NAN : (double)INFINITY;
    else
        v = (1.0 + m * 0x1.0p-10) * (double)(1u << e) * 0x1.0p-15;
    return (h & 0x8000) ? -v : v;
}

/* One element at p: bytes put in host order, then widened. */
static double element(const unsigned char *p, const struct header *h, int swap)
{
    unsigned char b[8];
    for (size_t k = 0; k < h->itemsize; k++)
        b[k] = swap ? p[h->itemsize - 1 - k] : p[k];
    union {
        double f8;
        float f4;
        uint16_t u2;
        int8_t i1;
        int16_t i2;
        int32_t i4;
        int64_t i8;
        uint8_t u1;
        uint32_t u4;
        uint64_t u8;
    } v = {0};
    memcpy(&v, b, h->itemsize);
    switch (h->kind) {
    case 'f':
        return h->itemsize == 8   ? v.f8
               : h->itemsize == 4 ? (double)v.f4
                                  : half_to_double(v.u2);
    case 'i':
        return h->itemsize == 1   ? v.i1
               : h->itemsize == 2 ? v.i2
               : h->itemsize == 4 ? v.i4
                                  : (double)v.i8;
    case 'u':
        return h->itemsize == 1   ? v.u1
               : h->itemsize == 2 ? v.u2
               : h->itemsize == 4 ? v.u4
                                  : (double)v.u8;
    default:
        return v.u1 != 0;
    }
}

static void convert(const unsigned char *src, const struct header *h,
                    double *dst)
{
    size_t r = h->shape[0], c = h->shape[1];
    int big = h->order == '>' ||
              ((h->order == '=' || h->order == '|') && host_is_big());
    int swap = big != host_is_big();
    if (h->kind == 'f' && h->itemsize == 8 && !swap && !h->fortran) {
        memcpy(dst, src, r * c * 8);
        return;
    }
    size_t k = 0;
    if (h->fortran) {
        for (size_t j = 0; j < c; j++)
            for (size_t i = 0; i < r; i++, k++)
                dst[i * c + j] = element(src + k * h->itemsize, h, swap);
    } else {
        for (k = 0; k < r * c; k++)
            dst[k] = element(src + k * h->itemsize, h, swap);
    }
}

static const char *kind_name(char kind)
{
    return kind == 'f' ? "float" : kind == 'i' ? "int" : "uint";
}

/* Magic, version, header length: the offset of the header and its size. */
static int read_preamble(const unsigned char *p, size_t len, size_t *start,
                         size_t *hlen, dv_error_t *err)
{
    if (len < NPY_MAGIC_LEN || memcmp(p, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return dv__errprintf(err, EINVAL, "not a .npy file (bad magic)");
    if (len < 10)
        return dv__errprintf(err, EINVAL, "truncated header");
    int major = p[6], minor = p[7];
    if (major < 1 || major > 3 || minor != 0)
        return dv__errprintf(err, EINVAL, "unsupported .npy version %d.%d",
                             major, minor);
    *start = major == 1 ? 10 : 12;
    if (len < *start)
        return dv__errprintf(err, EINVAL, "truncated header");
    *hlen = (size_t)p[8] | (size_t)p[9] << 8;
    if (major > 1)
        *hlen |= (size_t)p[10] << 16 | (size_t)p[11] << 24;
    if (*hlen > DV_NPY_HEADER_MAX)
        return dv__errprintf(err, EINVAL, "header of %zu bytes is too large",
                             *hlen);
    if (*hlen > len - *start)
        return dv__errprintf(err, EINVAL, "truncated header");
    return 0;
}

int dv_npy_decode(const void *buf, size_t len, dv_npy_t *out, dv_error_t *err)
{
    const unsigned char *p = buf;
    size_t start = 0, hlen = 0;
    struct header h;
    if (read_preamble(p, len, &start, &hlen, err) < 0 ||
        parse_header((const char *)p + start, hlen, &h, err) < 0 ||
        check_size(&h, len - start - hlen, err) < 0)
        return -1;
    double *data = malloc(h.shape[0] * h.shape[1] * sizeof(double));
    if (!data)
        return dv__errprintf(err, ENOMEM, "out of memory for the array");
    convert(p + start + hlen, &h, data);
    out->m.data = data;
    out->m.rows = h.shape[0];
    out->m.cols = h.shape[1];
    out->note[0] = '\0';
    if (h.kind == 'b')
        snprintf(out->note, sizeof(out->note), "converted from bool");
    else if (h.kind != 'f' || h.itemsize != 8)
        snprintf(out->note, sizeof(out->note), "converted from %s%zu",
                 kind_name(h.kind), h.itemsize * 8);
    return 0;
}

/* Read up to n bytes; the count (short at end of file), or -1. */
static int read_some(FILE *f, unsigned char *b, size_t n, size_t *got,
                     dv_error_t *err)
{
    *got = fread(b, 1, n, f);
    if (*got < n && ferror(f))
        return dv__errsys(err, "read failed");
    return 0;
}

/* Where the header of the first `have` bytes ends, so that it can be read
 * before the data; `have` when the preamble is not a valid one. */
static size_t header_end(const unsigned char *p, size_t have)
{
    size_t start = 0, hlen = 0;
    dv_error_t ignored;
    if (have < 12 || memcmp(p, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return have;
    /* read_preamble wants the header present: pretend it is */
    if (read_preamble(p, SIZE_MAX / 2, &start, &hlen, &ignored) < 0)
        return have;
    return start + hlen;
}

/* Read a .npy from f without trusting its header: the header is read
 * first, then exactly the data it promises, checked against the file's
 * size (or, for a pipe or device, against what follows). */
static int load_file(FILE *f, dv_npy_t *out, dv_error_t *err)
{
    unsigned char head[12 + DV_NPY_HEADER_MAX], extra;
    size_t have, more = 0, start = 0, hlen = 0;
    struct header h;
    struct stat st;
    if (read_some(f, head, 12, &have, err) < 0)
        return -1;
    size_t end = header_end(head, have);
    if (end > have && read_some(f, head + have, end - have, &more, err) < 0)
        return -1;
    have += more;
    /* a bad or short header: decoding says why */
    if (read_preamble(head, have, &start, &hlen, NULL) < 0 ||
        parse_header((const char *)head + start, hlen, &h, NULL) < 0)
        return dv_npy_decode(head, have, out, err);
    size_t want = promised_size(&h);
    int regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    if (regular) {
        size_t in_file =
            (uintmax_t)st.st_size > have ? (size_t)st.st_size - have : 0;
        if (check_size(&h, in_file, err) < 0)
            return -1;
    } else if (want == 0) {
        return check_size(&h, 0, err) < 0
                   ? -1
                   : dv__errprintf(err, EINVAL, "empty array");
    }
    unsigned char *buf = malloc(have + want);
    if (!buf)
        return dv__errprintf(err, ENOMEM, "out of memory for the array");
    memcpy(buf, head, have);
    int rc = read_some(f, buf + have, want, &more, err);
    if (rc == 0 && !regular && more == want && fread(&extra, 1, 1, f) == 1)
        rc = dv__errprintf(err, EINVAL, "more data than the header says");
    if (rc == 0)
        rc = dv_npy_decode(buf, have + more, out, err);
    free(buf);
    return rc;
}

int dv_npy_load(const char *path, dv_npy_t *out, dv_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dv__errsys(err, "cannot open");
    int rc = load_file(f, out, err);
    fclose(f);
    return rc;
}

/* The 1.0 header NumPy writes for a C-order '<f8' array of r x c, padded
 * so that the data starts at a multiple of 64 bytes. Returns its size. */
static size_t make_header(unsigned char *h, size_t max, size_t r, size_t c)
{
    char dict[160];
    int n = snprintf(dict, sizeof(dict),
                     "{'descr': '<f8', 'fortran_order': False, "
                     "'shape': (%zu, %zu), }",
                     r, c);
    char first[32];
    int digits = snprintf(first, sizeof(first), "%zu", r);
    /* NumPy leaves room to grow the first axis to 21 digits */
    size_t len = (size_t)n + (digits < 21 ? (size_t)(21 - digits) : 0);
    size_t total = 10 + len + 1;
    total += 64 - total % 64; /* NumPy pads a full 64 when aligned */
    if (total > max)
        return 0;
    /* The magic and version 1.0: bytes, not a string.
     * NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
    memcpy(h, NPY_MAGIC "\x01\x00", 8);
    h[8] = (unsigned char)((total - 10) & 0xff);
    h[9] = (unsigned char)((total - 10) >> 8);
    memset(h + 10, ' ', total - 10);
    memcpy(h + 10, dict, (size_t)n);
    h[total - 1] = '\n';
    return total;
}

static void put_le(unsigned char *dst, const double *src, size_t n)
{
    if (!host_is_big()) {
        memcpy(dst, src, n * 8);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        unsigned char b[8];
        memcpy(b, &src[k], 8);
        for (int i = 0; i < 8; i++)
            dst[k * 8 + (size_t)i] = b[7 - i];
    }
}

int dv_npy_encode(const dv_matrix_t *m, void **buf, size_t *len,
                  dv_error_t *err)
{
    unsigned char head[256];
    size_t hlen = make_header(head, sizeof(head), m->rows, m->cols);
    size_t n = m->rows * m->cols;
    if (m->cols && (m->rows > SIZE_MAX / m->cols || n > (SIZE_MAX - 256) / 8))
        return dv__errprintf(err, EOVERFLOW, "array too large");
    if (hlen == 0)
        return dv__errprintf(err, EOVERFLOW, "shape too long for a header");
    unsigned char *b = malloc(hlen + n * 8);
    if (!b)
        return dv__errprintf(err, ENOMEM, "out of memory for the .npy");
    memcpy(b, head, hlen);
    put_le(b + hlen, m->data, n);
    *buf = b;
    *len = hlen + n * 8;
    return 0;
}

int dv_npy_save(const char *path, const dv_matrix_t *m, dv_error_t *err)
{
    void *buf = NULL;
    size_t len = 0;
    if (dv_npy_encode(m, &buf, &len, err) < 0)
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(buf);
        return dv__errsys(err, "cannot create");
    }
    size_t put = fwrite(buf, 1, len, f);
    int saved = errno;
    free(buf);
    if (put != len) {
        fclose(f);
        errno = saved;
        return dv__errsys(err, "write failed");
    }
    if (fclose(f) != 0)
        return dv__errsys(err, "write failed");
    return 0;
}
