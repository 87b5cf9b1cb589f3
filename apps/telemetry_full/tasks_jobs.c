/* telemetry_full's two jobs as pool tasks: one conv2d (image, filter) item,
 * and one MNIST training run at a learning rate. An MNIST worker on a node
 * with GPUs takes a free GPU of its node from that node's device queue and
 * gives it back when done; elsewhere (or with --no-cuda) it trains on the
 * CPU, so nodes without GPUs never wait. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telemetry_full.h"
#include "workloads/conv2d/item.h"
#include "workloads/mnist/mnist.h"

DV_TASK(conv_task)(const void *arg, size_t len, dv_result_t *result)
{
    dv_conv2d_summary_t s;
    unsigned char out[DV_CONV2D_SUMMARY_SIZE];
    dv_error_t err;
    if (dv_conv2d_item_run(arg, len, &s, &err) < 0) {
        fprintf(stderr, "drover: telemetry_full: conv item: %s\n", err.text);
        return 1;
    }
    dv_conv2d_summary_encode(&s, out);
    return dv_result_set(result, out, sizeof(out)) < 0;
}

/* Take a free GPU of this node, or -1 to train on the CPU. */
static int take_gpu(const struct tf_mnist_arg *a, dv_queue_t **devq,
                    dv_error_t *err)
{
    int node = dv_node_self();
    *devq = NULL;
    if (a->no_cuda || node < 0 || node >= a->nnodes || a->gpus[node] <= 0)
        return -1;
    *devq = dv_queue_attach(&a->devices[node], err);
    if (!*devq)
        return -2;
    /* CUDA starts while another worker may hold the GPU (should it fail,
     * the training says why). */
    dv_error_t ignored;
    dv_mnist_cuda_prepare(&ignored);
    void *msg;
    size_t n;
    if (dv_queue_get(*devq, &msg, &n, -1, err) < 0)
        return -2;
    int gpu = -1;
    if (n == sizeof(int32_t))
        memcpy(&gpu, msg, sizeof(gpu));
    free(msg);
    return gpu;
}

static void give_gpu(dv_queue_t **devq, int gpu)
{
    if (*devq && gpu >= 0) {
        int32_t g = gpu;
        dv_queue_put(*devq, &g, sizeof(g), -1, NULL);
    }
    dv_queue_destroy(devq);
}

static int train(const struct tf_mnist_arg *a, int gpu,
                 const dv_mnist_data_t *data, struct tf_mnist_result *r,
                 dv_error_t *err)
{
    dv_mnist_options_t o;
    dv_mnist_options_init(&o);
    o.batch_size = a->batch_size;
    o.test_batch_size = a->test_batch_size;
    o.epochs = a->epochs;
    o.lr = a->lr;
    o.gamma = a->gamma;
    o.seed = (uint64_t)a->seed;
    o.no_cuda = gpu < 0;
    o.device = gpu;
    o.local_workers = a->local_workers;
    dv_mnist_result_t res;
    if (dv_mnist_train(&o, data, &res, err) < 0)
        return -1;
    r->loss = res.test_loss;
    r->accuracy = res.accuracy;
    r->epochs = res.epochs;
    r->images_per_s = res.train_images_per_s;
    snprintf(r->backend, sizeof(r->backend), "%s", res.backend);
    return 0;
}

DV_TASK(mnist_lr_sweep)(const void *arg, size_t len, dv_result_t *result)
{
    const struct tf_mnist_arg *a = arg;
    struct tf_mnist_result r = {.lr = len == sizeof(*a) ? a->lr : 0, .gpu = -1};
    dv_node_info_t self = {.hostname = "?"};
    dv_node_get(dv_node_self(), &self, NULL);
    snprintf(r.node, sizeof(r.node), "%s", self.hostname);
    dv_error_t err = {"bad argument"};
    dv_mnist_data_t *data = NULL;
    if (len != sizeof(*a))
        goto fail;
    /* The data first: read while another worker holds the GPU. */
    if (dv_mnist_data_load(a->data_dir, &data, &err) < 0)
        goto fail;
    dv_queue_t *devq;
    r.gpu = take_gpu(a, &devq, &err);
    if (r.gpu < -1)
        goto fail;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = train(a, r.gpu, data, &r, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    give_gpu(&devq, r.gpu);
    dv_mnist_data_destroy(&data);
    if (rc < 0)
        goto fail;
    r.seconds =
        (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    return dv_result_set(result, &r, sizeof(r)) < 0;
fail:
    dv_mnist_data_destroy(&data);
    fprintf(stderr,
            "drover: telemetry_full: MNIST worker (learning rate %g): %s\n",
            r.lr, err.text);
    return 1;
}
