/* The seed's SciPy job as items: what the main process of the demo (or a
 * benchmark) hands to its pool, one (image, filter) pair per item, with
 * images made by the worker or, for --images file:DIR, read from .npy
 * files and carried in the item. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "workloads/conv2d/item.h"
#include "workloads/conv2d/npy.h"

int dv_conv2d_job_item(enum dv_conv2d_images kind, const char *path,
                       size_t size, uint64_t seed, uint64_t index,
                       uint32_t step, void **buf, size_t *len, dv_error_t *err)
{
    double filt[16];
    dv_npy_t img = {.m = {NULL, size, size}};
    dv_conv2d_filter_fill(filt, 4, 4, seed, index);
    if (kind == DV_CONV2D_DATA) {
        dv_error_t why;
        if (!path)
            return dv__errprintf(err, EINVAL, "no file for a data item");
        if (dv_npy_load(path, &img, &why) < 0)
            return dv__errprintf(err, errno, "%s: %s", path, why.text);
    }
    if (img.m.rows > UINT32_MAX || img.m.cols > UINT32_MAX) {
        free(img.m.data);
        return dv__errprintf(err, EOVERFLOW, "image of %zu x %zu too large",
                             img.m.rows, img.m.cols);
    }
    dv_conv2d_item_t it = {.kind = kind,
                           .step = step,
                           .seed = seed,
                           .index = index,
                           .rows = (uint32_t)img.m.rows,
                           .cols = (uint32_t)img.m.cols,
                           .filt_rows = 4,
                           .filt_cols = 4,
                           .filter = filt,
                           .image = img.m.data};
    int rc = dv_conv2d_item_encode(&it, buf, len, err);
    free(img.m.data);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_npy(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".npy") == 0;
}

/* Append "dir/name" to *paths (capacity *cap). */
static int add_path(char ***paths, size_t *n, size_t *cap, const char *dir,
                    const char *name)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        char **p = realloc(*paths, c * sizeof(*p));
        if (!p)
            return -1;
        *paths = p;
        *cap = c;
    }
    size_t len = strlen(dir) + strlen(name) + 2;
    char *s = malloc(len);
    if (!s)
        return -1;
    snprintf(s, len, "%s/%s", dir, name);
    (*paths)[(*n)++] = s;
    return 0;
}

int dv_conv2d_dir_scan(const char *dir, char ***paths, size_t *n,
                       dv_error_t *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return dv__errsys(err, "%s: cannot read directory", dir);
    char **list = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL)
        if (is_npy(e->d_name))
            rc = add_path(&list, &count, &cap, dir, e->d_name);
    closedir(d);
    if (rc < 0 || count == 0) {
        dv_conv2d_paths_free(list, count);
        return rc < 0 ? dv__errprintf(err, ENOMEM, "out of memory")
                      : dv__errprintf(err, ENOENT, "%s: no .npy files", dir);
    }
    qsort(list, count, sizeof(*list), by_name);
    *paths = list;
    *n = count;
    return 0;
}

void dv_conv2d_paths_free(char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
}
