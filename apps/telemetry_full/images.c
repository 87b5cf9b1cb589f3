/* telemetry_full's conv2d items: one (image, filter) pair per image, as
 * the conv2d workload lays them out (workloads/conv2d/item.h): the image
 * made by the worker (zeros or random), or read here from a .npy file and
 * carried in the item (--images file:DIR). */
#include "images.h"

#include <errno.h>
#include <stdlib.h>

#include "common/error.h"
#include "workloads/conv2d/item.h"

/* The seed keeps every fifth row and column of each result. */
#define STEP 5

void tf_items_free(struct tf_items *it)
{
    for (size_t i = 0; i < it->n; i++)
        free((void *)it->items[i].data);
    free(it->items);
    it->items = NULL;
    it->n = 0;
}

int tf_items_make(struct tf_items *it, const struct tf_options *opt,
                  dv_error_t *err)
{
    char **paths = NULL;
    size_t n = (size_t)tf_options_images(opt);
    enum dv_conv2d_images kind =
        opt->images == TF_IMAGES_ZEROS ? DV_CONV2D_ZEROS : DV_CONV2D_RANDOM;
    it->n = 0;
    if (opt->images == TF_IMAGES_FILES) {
        if (dv_conv2d_dir_scan(opt->images_dir, &paths, &n, err) < 0)
            return -1;
        kind = DV_CONV2D_DATA;
    }
    it->items = calloc(n, sizeof(dv_item_t));
    int rc = it->items ? 0 : dv__errprintf(err, ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        void *buf;
        size_t len;
        rc =
            dv_conv2d_job_item(kind, paths ? paths[i] : NULL, (size_t)opt->size,
                               (uint64_t)opt->seed, i, STEP, &buf, &len, err);
        if (rc == 0)
            it->items[it->n++] = (dv_item_t){buf, len};
    }
    dv_conv2d_paths_free(paths, paths ? n : 0);
    if (rc < 0)
        tf_items_free(it);
    return rc;
}
