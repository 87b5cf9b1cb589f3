/* telemetry_full's run, from the first line it prints to the summary. */
#ifndef DROVER_APPS_TELEMETRY_FULL_DEMO_H
#define DROVER_APPS_TELEMETRY_FULL_DEMO_H

#include "images.h"
#include "telemetry_full.h"

struct tf_demo {
    const struct tf_options *opt;
    char data_dir[1024];
    char data_note[1024]; /* which MNIST data, printed with the header */
    int nnodes;
    int gpus[TF_MAX_NODES];
    dv_queue_t *queue, *ready, *devices[TF_MAX_NODES];
    dv_event_t *start, *end;
    dv_process_t *post, *monitors[TF_MAX_NODES];
    struct tf_items items;
    double conv_s, mnist_s;
    int failed; /* items or workers that failed */
};

/* Run the demo; 0 when it ran to the end (failed items are counted in
 * demo->failed), -1 when it could not (the reason was printed). */
int tf_demo_run(struct tf_demo *demo);

#endif
