/* telemetry_full: the seed's demo in C. Shared by its main process and its
 * tasks: what each task receives as its argument, and what it returns. */
#ifndef DROVER_APPS_TELEMETRY_FULL_H
#define DROVER_APPS_TELEMETRY_FULL_H

#include <stdint.h>

#include "drover/drover.h"
#include "options.h"

/* The most nodes the demo's per-node tables hold. */
#define TF_MAX_NODES 256

/* What the monitors and the post-processing process receive. */
struct tf_telem_arg {
    dv_handle_t queue; /* the shared telemetry queue */
    dv_handle_t ready; /* monitors announce their GPU count here */
    dv_handle_t start; /* set when the jobs launch */
    dv_handle_t end;   /* set when the jobs are done */
    double interval;   /* seconds between samples */
    int node;          /* the monitor's node index */
    int bars;          /* post-processing: bars instead of lines */
    char log[1024];    /* post-processing: JSONL file, or "" */
    char plot[1024];   /* post-processing: SVG file, or "" */
};

/* What a monitor puts on the ready queue before it waits for the start. */
struct tf_ready {
    int32_t node;
    int32_t gpus;
};

/* What an MNIST worker receives: its learning rate follows the header. */
struct tf_mnist_arg {
    double lr, gamma;
    int32_t batch_size, test_batch_size, epochs, no_cuda;
    int64_t seed;
    int32_t local_workers; /* MNIST workers sharing a node */
    int32_t nnodes;
    int32_t gpus[TF_MAX_NODES];        /* per node */
    dv_handle_t devices[TF_MAX_NODES]; /* per node: free GPU indices */
    char data_dir[1024];
};

/* What an MNIST worker returns. */
struct tf_mnist_result {
    double lr, loss, accuracy, seconds, images_per_s;
    int32_t epochs, gpu; /* gpu -1: trained on the CPU */
    char node[64];
    char backend[128];
};

#endif
