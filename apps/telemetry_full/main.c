/* telemetry_full: the seed's demo in C. The main process starts one
 * post-processing process and one telemetry monitor per node, a pool of
 * conv2d workers and a pool of MNIST workers sweeping the learning rate,
 * runs both jobs while the monitors feed one shared queue, then shuts the
 * telemetry down and prints each worker's final test result and a summary.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"
#include "telemetry/telemetry.h"
#include "workloads/mnist/mnist.h"

static int fail(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: telemetry_full: %s%s%s\n", what,
            what[0] ? ": " : "", err->text);
    return -1;
}

/* Everything a run needs that can be wrong is checked here, before any
 * process starts; the conv items are made here too, since reading the
 * images of --images file:DIR is where that input can be wrong. */
static int check_inputs(const struct tf_options *opt, struct tf_demo *d,
                        dv_error_t *err)
{
    if (opt->data_dir)
        snprintf(d->data_dir, sizeof(d->data_dir), "%s", opt->data_dir);
    else
        dv_mnist_default_data_dir(d->data_dir, sizeof(d->data_dir));
    dv_mnist_data_t *data = NULL;
    if (dv_mnist_data_load(d->data_dir, &data, err) < 0)
        return -1;
    char dir[PATH_MAX];
    snprintf(d->data_note, sizeof(d->data_note),
             "MNIST data: %s, %u training and %u test images, from %.900s",
             data->name, data->n_train, data->n_test,
             realpath(data->dir, dir) ? dir : data->dir);
    dv_mnist_data_destroy(&data);
    if (opt->telemetry_log &&
        dv_telem_check_writable(opt->telemetry_log, err) < 0)
        return -1;
    if (opt->telemetry_plot &&
        dv_telem_check_writable(opt->telemetry_plot, err) < 0)
        return -1;
    return tf_items_make(&d->items, opt, err);
}

int main(int argc, char **argv)
{
    dv_error_t err = {""};
    if (dv_init(&argc, &argv, &err) < 0) {
        fail("", &err);
        return 1;
    }
    struct tf_options opt;
    struct tf_demo demo = {.opt = &opt};
    int rc = 2;
    if (tf_options_parse(&opt, argc, argv, &err) < 0) {
        fail("", &err);
    } else if (opt.help) {
        tf_options_print_help(stdout);
        rc = 0;
        if (fflush(stdout) != 0) {
            fprintf(stderr, "drover: telemetry_full: stdout: %s\n",
                    strerror(errno));
            rc = 1;
        }
    } else if (check_inputs(&opt, &demo, &err) < 0) {
        fail("", &err);
    } else {
        rc = tf_demo_run(&demo) < 0 ? 1 : demo.failed != 0;
    }
    dv_finalize();
    return rc;
}
