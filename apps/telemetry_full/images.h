/* telemetry_full's conv2d items (see images.c). */
#ifndef DROVER_APPS_TELEMETRY_FULL_IMAGES_H
#define DROVER_APPS_TELEMETRY_FULL_IMAGES_H

#include "drover/drover.h"
#include "options.h"

/* The items of the conv job; owned, freed with tf_items_free(). */
struct tf_items {
    dv_item_t *items;
    size_t n;
};

/* Make one item per image as the options say. 0, or -1 with the reason. */
int tf_items_make(struct tf_items *it, const struct tf_options *opt,
                  dv_error_t *err);

void tf_items_free(struct tf_items *it);

#endif
