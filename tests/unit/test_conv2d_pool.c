/* conv2d items through a real drover pool: small and 8 MiB images carried
 * in the items (as --images file:DIR sends them) and generated ones come
 * back with the same summaries as runs in this process, and a corrupt item
 * gives that item an error result, not a crash. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "drover/drover.h"
#include "workloads/conv2d/item.h"

DV_TASK(conv2d_item)(const void *arg, size_t len, dv_result_t *result)
{
    dv_conv2d_summary_t s;
    unsigned char out[DV_CONV2D_SUMMARY_SIZE];
    if (dv_conv2d_item_run(arg, len, &s, NULL) < 0)
        return 3;
    dv_conv2d_summary_encode(&s, out);
    return dv_result_set(result, out, sizeof(out)) < 0 ? 2 : 0;
}

static int make(size_t i, dv_item_t *item)
{
    static const size_t sizes[] = {1024, 7, 300, 64};
    size_t size = sizes[i % 4];
    double *img = malloc(size * size * sizeof(double)), filt[16];
    dv_conv2d_normal_fill(img, size, size, 9, i, 0);
    dv_conv2d_filter_fill(filt, 4, 4, 9, i);
    enum dv_conv2d_images kinds[] = {DV_CONV2D_DATA, DV_CONV2D_DATA,
                                     DV_CONV2D_RANDOM, DV_CONV2D_ZEROS};
    dv_conv2d_item_t it = {.kind = kinds[i % 4],
                           .step = 5,
                           .seed = 9,
                           .index = i,
                           .rows = (uint32_t)size,
                           .cols = (uint32_t)size,
                           .filt_rows = 4,
                           .filt_cols = 4,
                           .filter = filt,
                           .image = img};
    void *buf;
    int rc = dv_conv2d_item_encode(&it, &buf, &item->len, NULL);
    item->data = buf;
    free(img);
    return rc;
}

int main(int argc, char **argv)
{
    dv_error_t err = {{0}};
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "dv_init: %s\n", err.text);
        return 1;
    }
    enum { N = 9 };
    dv_item_t items[N];
    for (size_t i = 0; i < N - 1; i++)
        CHECK(make(i, &items[i]) == 0);
    static const char junk[] = "DVC2 not really an item";
    items[N - 1] = (dv_item_t){junk, sizeof(junk)};
    dv_pool_t *pool = dv_pool_create(2, NULL, &err);
    CHECK(pool != NULL);
    dv_item_result_t *res = NULL;
    CHECK(pool &&
          dv_pool_map(pool, "conv2d_item", items, N, 1, &res, &err) == 0);
    for (size_t i = 0; res && i < N; i++) {
        dv_conv2d_summary_t got, want;
        if (i == N - 1) {
            CHECK(!res[i].ok && res[i].code == 3);
            continue;
        }
        CHECK(res[i].ok);
        CHECK(dv_conv2d_summary_decode(res[i].data, res[i].len, &got, NULL) ==
              0);
        CHECK(dv_conv2d_item_run(items[i].data, items[i].len, &want, NULL) ==
              0);
        CHECK(memcmp(&got, &want, sizeof(got)) == 0);
    }
    dv_item_results_free(res, N);
    dv_pool_destroy(&pool);
    for (size_t i = 0; i < N - 1; i++)
        free((void *)items[i].data);
    dv_finalize();
    return CHECK_DONE();
}
