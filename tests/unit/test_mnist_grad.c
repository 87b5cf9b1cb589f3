/* Tests of the network's passes (net_impl.h): the forward against a naive
 * direct implementation of the PyTorch example's network, every layer's
 * gradient against central finite differences in double precision, the
 * float path against the double one, and chunking not changing results. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workloads/mnist/net.h"

enum { N = 4 };

static uint64_t rng = 88172645463325252ull;
static double urand(void) /* [0, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (rng >> 11) * 0x1.0p-53;
}

static const struct {
    const char *name;
    int off, count, fan_in;
} tensors[] = {{"conv1.weight", DV_MNIST_OFF_W1, 288, 9},
               {"conv1.bias", DV_MNIST_OFF_B1, 32, 9},
               {"conv2.weight", DV_MNIST_OFF_W2, 18432, 288},
               {"conv2.bias", DV_MNIST_OFF_B2, 64, 288},
               {"fc1.weight", DV_MNIST_OFF_W3, 1179648, 9216},
               {"fc1.bias", DV_MNIST_OFF_B3, 128, 9216},
               {"fc2.weight", DV_MNIST_OFF_W4, 1280, 128},
               {"fc2.bias", DV_MNIST_OFF_B4, 10, 128}};

/* One sample through the network, eval mode, written the obvious way. */
static void naive_forward(const double *p, const uint8_t *img, double out[10])
{
    static double x[28][28], a1[32][26][26], a2[64][24][24], f[9216], h[128];
    for (int i = 0; i < 784; i++)
        x[i / 28][i % 28] = dv__mnist_norm(img[i]);
    for (int o = 0; o < 32; o++)
        for (int i = 0; i < 26; i++)
            for (int j = 0; j < 26; j++) {
                double s = p[DV_MNIST_OFF_B1 + o];
                for (int ki = 0; ki < 3; ki++)
                    for (int kj = 0; kj < 3; kj++)
                        s += p[o * 9 + ki * 3 + kj] * x[i + ki][j + kj];
                a1[o][i][j] = s > 0 ? s : 0;
            }
    for (int o = 0; o < 64; o++)
        for (int i = 0; i < 24; i++)
            for (int j = 0; j < 24; j++) {
                double s = p[DV_MNIST_OFF_B2 + o];
                for (int c = 0; c < 32; c++)
                    for (int k = 0; k < 9; k++)
                        s += p[DV_MNIST_OFF_W2 + o * 288 + c * 9 + k] *
                             a1[c][i + k / 3][j + k % 3];
                a2[o][i][j] = s > 0 ? s : 0;
            }
    for (int c = 0; c < 64; c++)
        for (int i = 0; i < 12; i++)
            for (int j = 0; j < 12; j++)
                f[c * 144 + i * 12 + j] = fmax(
                    fmax(a2[c][2 * i][2 * j], a2[c][2 * i][2 * j + 1]),
                    fmax(a2[c][2 * i + 1][2 * j], a2[c][2 * i + 1][2 * j + 1]));
    for (int o = 0; o < 128; o++) {
        double s = p[DV_MNIST_OFF_B3 + o];
        for (int k = 0; k < 9216; k++)
            s += p[DV_MNIST_OFF_W3 + (size_t)o * 9216 + k] * f[k];
        h[o] = s > 0 ? s : 0;
    }
    double m = -INFINITY, z = 0;
    for (int o = 0; o < 10; o++) {
        double s = p[DV_MNIST_OFF_B4 + o];
        for (int k = 0; k < 128; k++)
            s += p[DV_MNIST_OFF_W4 + o * 128 + k] * h[k];
        out[o] = s;
        m = fmax(m, s);
    }
    for (int o = 0; o < 10; o++)
        z += exp(out[o] - m);
    for (int o = 0; o < 10; o++)
        out[o] -= m + log(z);
}

static double loss_d(dv__mnist_ws_d_t *ws, const double *p,
                     const uint8_t *images, const uint8_t *labels,
                     const int32_t *idx, uint64_t k1, uint64_t k2)
{
    dv__mnist_forward_d(ws, p, images, idx, N, 1, k1, k2);
    return dv__mnist_nll_d(ws, labels, idx, N, NULL) / N;
}

static void check_tensor_grads(dv__mnist_ws_d_t *ws, double *p, const double *g,
                               const uint8_t *images, const uint8_t *labels,
                               const int32_t *idx, uint64_t k1, uint64_t k2)
{
    for (size_t t = 0; t < sizeof tensors / sizeof tensors[0]; t++) {
        double worst = 0, gnorm = 0;
        for (int s = 0; s < 6; s++) {
            int i = tensors[t].off + (int)(urand() * tensors[t].count);
            double keep = p[i], h = 1e-5;
            p[i] = keep + h;
            double lp = loss_d(ws, p, images, labels, idx, k1, k2);
            p[i] = keep - h;
            double lm = loss_d(ws, p, images, labels, idx, k1, k2);
            p[i] = keep;
            double num = (lp - lm) / (2 * h);
            worst = fmax(worst, fabs(num - g[i]));
            gnorm = fmax(gnorm, fabs(g[i]));
        }
        printf("%-13s max |numeric - analytic| %.2e (max |grad| %.2e)\n",
               tensors[t].name, worst, gnorm);
        CHECK(worst <= 1e-7 + 1e-5 * gnorm);
        CHECK(gnorm > 0);
    }
}

static double rel_diff_f(const float *a, const double *b, long n)
{
    double num = 0, den = 0;
    for (long i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / den);
}

int main(void)
{
    double *p = malloc(DV_MNIST_NPARAMS * sizeof *p);
    float *pf = malloc(DV_MNIST_NPARAMS * sizeof *pf);
    for (size_t t = 0; t < sizeof tensors / sizeof tensors[0]; t++)
        for (int i = 0; i < tensors[t].count; i++)
            p[tensors[t].off + i] = (2 * urand() - 1) / sqrt(tensors[t].fan_in);
    for (long i = 0; i < DV_MNIST_NPARAMS; i++)
        pf[i] = (float)p[i];
    uint8_t images[N * 784], labels[N] = {3, 7, 0, 9};
    /* Noise, not digits: a flat background gives max-pool windows of
     * tied values, where the loss has no derivative. */
    for (int i = 0; i < N * 784; i++)
        images[i] = (uint8_t)(urand() * 256);
    int32_t idx[N] = {2, 0, 3, 1};
    uint64_t k1 = dv__mnist_drop_key(5, 11, 1),
             k2 = dv__mnist_drop_key(5, 11, 2);

    /* the forward is the example's network */
    dv__mnist_ws_d_t *ws = dv__mnist_ws_create_d(N, 3, 2);
    dv__mnist_forward_d(ws, p, images, idx, N, 0, 0, 0);
    double worst = 0;
    for (int b = 0; b < N; b++) {
        double ref[10];
        naive_forward(p, images + idx[b] * 784, ref);
        for (int k = 0; k < 10; k++)
            worst = fmax(worst, fabs(ref[k] - dv__mnist_out_d(ws)[b * 10 + k]));
    }
    printf("forward vs naive: max diff %.2e\n", worst);
    CHECK(worst < 1e-10);

    /* gradients with dropout on, against finite differences */
    loss_d(ws, p, images, labels, idx, k1, k2);
    dv__mnist_backward_d(ws, p, labels, idx, N);
    double *g = malloc(DV_MNIST_NPARAMS * sizeof *g);
    memcpy(g, dv__mnist_grad_d(ws), DV_MNIST_NPARAMS * sizeof *g);
    check_tensor_grads(ws, p, g, images, labels, idx, k1, k2);

    /* Winograd (the default) and im2col give the same conv2 */
    dv__mnist_ws_d_t *wi = dv__mnist_ws_create_d(N, 3, 2);
    dv__mnist_ws_set_winograd_d(wi, 0);
    loss_d(wi, p, images, labels, idx, k1, k2);
    dv__mnist_backward_d(wi, p, labels, idx, N);
    double wd = 0, ws_max = 0;
    for (long i = 0; i < DV_MNIST_NPARAMS; i++) {
        wd = fmax(wd, fabs(dv__mnist_grad_d(wi)[i] - g[i]));
        ws_max = fmax(ws_max, fabs(g[i]));
    }
    printf("Winograd vs im2col gradient: max diff %.2e\n", wd);
    CHECK(wd < 1e-12 * (1 + ws_max));
    dv__mnist_ws_destroy_d(wi);

    /* chunk size changes nothing; float agrees with double */
    dv__mnist_ws_d_t *ws1 = dv__mnist_ws_create_d(N, 1, 1);
    loss_d(ws1, p, images, labels, idx, k1, k2);
    dv__mnist_backward_d(ws1, p, labels, idx, N);
    double cd = 0;
    for (long i = 0; i < DV_MNIST_NPARAMS; i++)
        cd = fmax(cd, fabs(dv__mnist_grad_d(ws1)[i] - g[i]));
    CHECK(cd < 1e-12);
    dv__mnist_ws_f_t *wf = dv__mnist_ws_create_f(N, 8, 2);
    dv__mnist_forward_f(wf, pf, images, idx, N, 1, k1, k2);
    dv__mnist_backward_f(wf, pf, labels, idx, N);
    double rd = rel_diff_f(dv__mnist_grad_f(wf), g, DV_MNIST_NPARAMS);
    printf("float vs double gradient: relative difference %.2e\n", rd);
    CHECK(rd < 1e-4);
    dv__mnist_ws_set_winograd_f(wf, 0); /* im2col, the AVX-512 default */
    dv__mnist_forward_f(wf, pf, images, idx, N, 1, k1, k2);
    dv__mnist_backward_f(wf, pf, labels, idx, N);
    rd = rel_diff_f(dv__mnist_grad_f(wf), g, DV_MNIST_NPARAMS);
    printf("float (im2col) vs double gradient: relative difference %.2e\n", rd);
    CHECK(rd < 1e-4);
    dv__mnist_ws_set_implicit_f(wf, 1); /* conv2 over shifted rows */
    dv__mnist_forward_f(wf, pf, images, idx, N, 1, k1, k2);
    dv__mnist_backward_f(wf, pf, labels, idx, N);
    rd = rel_diff_f(dv__mnist_grad_f(wf), g, DV_MNIST_NPARAMS);
    printf("float (implicit) vs double gradient: relative difference %.2e\n",
           rd);
    CHECK(rd < 1e-4);
    dv__mnist_ws_f_t *w1 = dv__mnist_ws_create_f(N, 1, 1); /* one chunk each */
    for (int wino = 0; wino < 2; wino++) { /* shifted rows, then hybrid */
        dv__mnist_ws_set_winograd_f(w1, wino);
        dv__mnist_ws_set_implicit_f(w1, 1);
        dv__mnist_forward_f(w1, pf, images, idx, N, 1, k1, k2);
        dv__mnist_backward_f(w1, pf, labels, idx, N);
        rd = rel_diff_f(dv__mnist_grad_f(w1), g, DV_MNIST_NPARAMS);
        printf("float (implicit, Winograd %d, chunks of 1) vs double: "
               "relative difference %.2e\n",
               wino, rd);
        CHECK(rd < 1e-4);
    }
    dv__mnist_ws_set_winograd_f(wf, 1); /* hybrid, a chunk of 4 */
    dv__mnist_forward_f(wf, pf, images, idx, N, 1, k1, k2);
    dv__mnist_backward_f(wf, pf, labels, idx, N);
    rd = rel_diff_f(dv__mnist_grad_f(wf), g, DV_MNIST_NPARAMS);
    printf("float (implicit + Winograd) vs double gradient: relative "
           "difference %.2e\n",
           rd);
    CHECK(rd < 1e-4);
    double lw = 0; /* the log-probabilities of the hybrid forward */
    for (int i = 0; i < N * 10; i++)
        lw = fmax(lw, fabs(dv__mnist_out_f(wf)[i] - dv__mnist_out_f(w1)[i]));
    printf("hybrid forward, chunk of 4 vs chunks of 1: max diff %.2e\n", lw);
    CHECK(lw < 1e-4);
    dv__mnist_ws_destroy_f(w1);

    dv__mnist_ws_destroy_d(ws), dv__mnist_ws_destroy_d(ws1);
    dv__mnist_ws_destroy_f(wf);
    free(p), free(pf), free(g);
    return CHECK_DONE();
}
