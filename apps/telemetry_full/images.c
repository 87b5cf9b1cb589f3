/* telemetry_full's conv2d items: one (image, filter) pair per image, the
 * filter random normal from the job's seed, the image made by the worker
 * (zeros or random) or read here from a .npy file and carried in the item
 * (--images file:DIR). */
#include "images.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "workloads/conv2d/item.h"
#include "workloads/conv2d/npy.h"

#define FILTER_SIZE 4
#define STEP 5

void tf_items_free(struct tf_items *it)
{
    for (size_t i = 0; i < it->n; i++)
        free((void *)it->items[i].data);
    free(it->items);
    it->items = NULL;
    it->n = 0;
}

static int add_item(struct tf_items *it, const dv_conv2d_item_t *c,
                    dv_error_t *err)
{
    void *buf;
    size_t len;
    if (dv_conv2d_item_encode(c, &buf, &len, err) < 0)
        return -1;
    it->items[it->n++] = (dv_item_t){buf, len};
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted .npy file names of dir; *names malloc'd (each too). */
static int list_npy(const char *dir, char ***names, size_t *n, dv_error_t *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return dv__errsys(err, "--images: %s", dir);
    size_t cap = 0;
    struct dirent *e;
    *names = NULL;
    *n = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".npy"))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(*names, cap * sizeof(char *));
            if (!grown)
                break;
            *names = grown;
        }
        if (!((*names)[*n] = strdup(e->d_name)))
            break;
        (*n)++;
    }
    closedir(d);
    if (*n == 0)
        return dv__errprintf(err, ENOENT, "--images: no .npy file in %s", dir);
    qsort(*names, *n, sizeof(char *), cmp_names);
    return 0;
}

static int add_file_item(struct tf_items *it, const char *dir, const char *name,
                         dv_conv2d_item_t *c, dv_error_t *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    dv_npy_t a;
    if (dv_npy_load(path, &a, err) < 0)
        return -1;
    if (a.m.rows > UINT32_MAX || a.m.cols > UINT32_MAX) {
        free(a.m.data);
        return dv__errprintf(err, EINVAL, "--images: %s: too large", path);
    }
    c->kind = DV_CONV2D_DATA;
    c->rows = (uint32_t)a.m.rows;
    c->cols = (uint32_t)a.m.cols;
    c->image = a.m.data;
    int rc = add_item(it, c, err);
    free(a.m.data);
    return rc;
}

int tf_items_make(struct tf_items *it, const struct tf_options *opt,
                  dv_error_t *err)
{
    char **names = NULL;
    size_t n = (size_t)tf_options_images(opt);
    memset(it, 0, sizeof(*it));
    if (opt->images == TF_IMAGES_FILES &&
        list_npy(opt->images_dir, &names, &n, err) < 0)
        return -1;
    it->items = calloc(n, sizeof(dv_item_t));
    int rc = it->items ? 0 : dv__errprintf(err, ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        double filter[FILTER_SIZE * FILTER_SIZE];
        dv_conv2d_filter_fill(filter, FILTER_SIZE, FILTER_SIZE,
                              (uint64_t)opt->seed, i);
        dv_conv2d_item_t c = {
            .kind = opt->images == TF_IMAGES_ZEROS ? DV_CONV2D_ZEROS
                                                   : DV_CONV2D_RANDOM,
            .step = STEP,
            .seed = (uint64_t)opt->seed,
            .index = i,
            .rows = (uint32_t)opt->size,
            .cols = (uint32_t)opt->size,
            .filt_rows = FILTER_SIZE,
            .filt_cols = FILTER_SIZE,
            .filter = filter,
        };
        rc = names ? add_file_item(it, opt->images_dir, names[i], &c, err)
                   : add_item(it, &c, err);
    }
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    if (rc < 0)
        tf_items_free(it);
    return rc;
}
