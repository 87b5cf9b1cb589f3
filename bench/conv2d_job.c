/* conv2d_job: the seed's SciPy job through a drover pool, for
 * bench/conv2d.sh. MEM / SIZE^2 items, each an image with its own random
 * normal 4x4 filter, convolved with step 5 by one task per item on WORKERS
 * workers (default: every usable CPU).
 *
 *   conv2d_job [MEM [SIZE [zeros|random|data [WORKERS]]]]
 *
 * zeros and random images are made by the worker from (seed, index); data
 * ships the seed's zero image through the pool in every item (8 MiB an
 * item at size 1024), as multiprocessing does, in windows of a few items
 * per worker so that memory stays bounded. Prints "images N seconds T workers
 * W". The first and last results are checked against the same item run here. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/drover.h"
#include "workloads/conv2d/item.h"

#define SEED 1
#define STEP 5

DV_TASK(conv2d_item)(const void *arg, size_t len, dv_result_t *result)
{
    dv_conv2d_summary_t s;
    unsigned char out[DV_CONV2D_SUMMARY_SIZE];
    if (dv_conv2d_item_run(arg, len, &s, NULL) < 0)
        return 1;
    dv_conv2d_summary_encode(&s, out);
    return dv_result_set(result, out, sizeof(out)) < 0 ? 2 : 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

struct job {
    size_t n, size;
    enum dv_conv2d_images kind;
    double *image; /* data mode: the image shipped (zeros) */
    dv_conv2d_summary_t *got;
};

/* Item `index` of the job (malloc'd bytes). */
static int make_item(const struct job *J, size_t index, dv_item_t *item)
{
    double filt[16];
    dv_conv2d_filter_fill(filt, 4, 4, SEED, index);
    dv_conv2d_item_t it = {.kind = J->kind,
                           .step = STEP,
                           .seed = SEED,
                           .index = index,
                           .rows = (uint32_t)J->size,
                           .cols = (uint32_t)J->size,
                           .filt_rows = 4,
                           .filt_cols = 4,
                           .filter = filt,
                           .image = J->image};
    void *buf;
    if (dv_conv2d_item_encode(&it, &buf, &item->len, NULL) < 0)
        return -1;
    item->data = buf;
    return 0;
}

static int collect(const struct job *J, dv_item_result_t *res, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        dv_conv2d_summary_t s;
        if (!res[i].ok ||
            dv_conv2d_summary_decode(res[i].data, res[i].len, &s, NULL) < 0 ||
            s.index >= J->n) {
            fprintf(stderr, "drover: conv2d_job: item failed: %s\n",
                    res[i].ok ? "bad result" : res[i].reason);
            bad = 1;
            continue;
        }
        J->got[s.index] = s;
    }
    dv_item_results_free(res, n);
    return bad ? -1 : 0;
}

/* Submit [lo, hi) without waiting; the pool copies the bytes. */
static dv_async_t *submit(dv_pool_t *pool, const struct job *J, size_t lo,
                          size_t hi)
{
    dv_item_t *items = calloc(hi - lo, sizeof(*items));
    dv_async_t *a = NULL;
    dv_error_t err = {{0}};
    size_t made = 0;
    while (items && lo + made < hi &&
           make_item(J, lo + made, &items[made]) == 0)
        made++;
    if (items && made == hi - lo)
        a = dv_pool_map_async(pool, "conv2d_item", items, made, 1, &err);
    if (!a)
        fprintf(stderr, "drover: conv2d_job: submit: %s\n",
                err.text[0] ? err.text : "out of memory");
    for (size_t i = 0; i < made; i++)
        free((void *)items[i].data);
    free(items);
    return a;
}

static int wait_window(const struct job *J, dv_async_t **a)
{
    dv_item_result_t *res = NULL;
    size_t n = 0;
    dv_error_t err = {{0}};
    int rc = dv_async_get(*a, -1, &res, &n, &err);
    dv_async_destroy(a);
    if (rc < 0) {
        fprintf(stderr, "drover: conv2d_job: %s\n", err.text);
        return -1;
    }
    return collect(J, res, n);
}

/* Run the whole job: one map for generated images, sliding windows of
 * two outstanding maps for shipped ones. */
static int run(dv_pool_t *pool, const struct job *J, int workers)
{
    size_t window = J->kind == DV_CONV2D_DATA ? 4 * (size_t)workers : J->n;
    dv_async_t *prev = NULL;
    for (size_t lo = 0; lo < J->n; lo += window) {
        size_t hi = lo + window < J->n ? lo + window : J->n;
        dv_async_t *a = submit(pool, J, lo, hi);
        if (!a || (prev && wait_window(J, &prev) < 0)) {
            dv_async_destroy(&a);
            dv_async_destroy(&prev);
            return -1;
        }
        prev = a;
    }
    return prev ? wait_window(J, &prev) : 0;
}

/* The pool's results for the first and last items equal a local run. */
static int check(const struct job *J)
{
    size_t idx[2] = {0, J->n - 1};
    for (int k = 0; k < 2; k++) {
        dv_item_t item;
        dv_conv2d_summary_t s;
        if (make_item(J, idx[k], &item) < 0 ||
            dv_conv2d_item_run(item.data, item.len, &s, NULL) < 0)
            return -1;
        free((void *)item.data);
        if (memcmp(&s, &J->got[idx[k]], sizeof(s)) != 0) {
            fprintf(stderr, "drover: conv2d_job: item %zu differs\n", idx[k]);
            return -1;
        }
    }
    return 0;
}

static int parse_kind(const char *s, enum dv_conv2d_images *kind)
{
    if (strcmp(s, "zeros") == 0)
        *kind = DV_CONV2D_ZEROS;
    else if (strcmp(s, "random") == 0)
        *kind = DV_CONV2D_RANDOM;
    else if (strcmp(s, "data") == 0)
        *kind = DV_CONV2D_DATA;
    else
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    dv_error_t err = {{0}};
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: conv2d_job: %s\n", err.text);
        return 1;
    }
    unsigned long long mem =
        argc > 1 ? strtoull(argv[1], NULL, 10) : 1ULL << 30;
    struct job J = {.size = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024};
    int workers = argc > 4 ? atoi(argv[4]) : usable_cpus();
    if (J.size == 0 || J.size > 65536 || workers < 1 ||
        parse_kind(argc > 3 ? argv[3] : "zeros", &J.kind) < 0 ||
        (J.n = (size_t)(mem / (J.size * J.size))) == 0) {
        fprintf(stderr, "usage: conv2d_job [MEM [SIZE [zeros|random|data "
                        "[WORKERS]]]]\n");
        return 2;
    }
    J.got = calloc(J.n, sizeof(*J.got));
    J.image = calloc(J.size * J.size, sizeof(double));
    dv_pool_t *pool = dv_pool_create(workers, NULL, &err);
    if (!pool || !J.got || !J.image) {
        fprintf(stderr, "drover: conv2d_job: %s\n", err.text);
        return 1;
    }
    double t0 = now_s();
    int rc = run(pool, &J, workers);
    double dt = now_s() - t0;
    dv_pool_destroy(&pool);
    if (rc == 0)
        rc = check(&J);
    dv_finalize();
    if (rc == 0)
        printf("images %zu seconds %.6f workers %d\n", J.n, dt, workers);
    free(J.got);
    free(J.image);
    return rc == 0 ? 0 : 1;
}
