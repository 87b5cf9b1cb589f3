/* telemetry_full's command line: the seed's flags with the seed's defaults,
 * plus drover's own (--data-dir, --images, --interval, --tail,
 * --telemetry-log, --telemetry-plot). */
#ifndef DROVER_APPS_TELEMETRY_FULL_OPTIONS_H
#define DROVER_APPS_TELEMETRY_FULL_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "drover/error.h"

enum tf_images { TF_IMAGES_RANDOM, TF_IMAGES_ZEROS, TF_IMAGES_FILES };

/* Parsed options; strings point into argv (borrowed). */
struct tf_options {
    int scipy_workers, mnist_workers;
    bool bars, no_cuda;
    long long size, mem;
    int batch_size, test_batch_size, epochs;
    double gamma;
    long long seed;
    const char *data_dir;
    enum tf_images images;
    const char *images_dir; /* with TF_IMAGES_FILES */
    double interval, tail;  /* seconds; tail defaults to 2 * interval */
    const char *telemetry_log, *telemetry_plot;
    int gpu_slots; /* MNIST workers training on one GPU at once */
    bool help;
};

/* Parse and check argv[1..argc). Returns 0 (opt->help set when -h was
 * given), or -1 with err naming the flag and what is wrong with it. */
int tf_options_parse(struct tf_options *opt, int argc, char **argv,
                     dv_error_t *err);

/* Number of images the conv job processes: mem / size^2. */
long long tf_options_images(const struct tf_options *opt);

/* The learning rate of MNIST worker i: 1 / (n - 1) * i + 0.5. */
double tf_options_lr(const struct tf_options *opt, int i);

void tf_options_print_help(FILE *out);

#endif
