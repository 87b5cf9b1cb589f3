/* conv2d: the command line of the conv2d workload.
 *
 *   conv2d --image IMG.npy --filter FILT.npy --step S --out OUT.npy
 *          [--threads N]
 *
 * writes scipy.signal.convolve2d(image, filter)[::S, ::S] as a float64 .npy
 * file. Inputs that are not float64 are converted, with a note on stderr;
 * bad inputs get one line "drover: conv2d: <file>: <reason>" and exit 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/conv2d/conv2d.h"
#include "workloads/conv2d/npy.h"

struct args {
    const char *image, *filter, *out;
    long step;
    long threads;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: conv2d --image IMG.npy --filter FILT.npy --step S "
               "--out OUT.npy [--threads N]\n"
               "  writes scipy.signal.convolve2d(image, filter)[::S, ::S] "
               "(mode 'full', fill 0)\n"
               "  --threads N  threads to use (default 1; 0: every usable "
               "CPU)\n");
}

static int bad_usage(const char *what)
{
    fprintf(stderr, "drover: conv2d: %s\n", what);
    usage(stderr);
    return 2;
}

/* A whole decimal number in [lo, hi], or -1. */
static long number(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {{"image", required_argument, 0, 'i'},
                                         {"filter", required_argument, 0, 'f'},
                                         {"step", required_argument, 0, 's'},
                                         {"out", required_argument, 0, 'o'},
                                         {"threads", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *a = (struct args){.step = -1, .threads = 1};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            a->image = optarg;
            break;
        case 'f':
            a->filter = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 's':
            if ((a->step = number(optarg, 1, INT_MAX)) < 0)
                return bad_usage("--step: want an integer >= 1");
            break;
        case 't':
            if ((a->threads = number(optarg, 0, 1024)) < 0)
                return bad_usage("--threads: want an integer in 0..1024");
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            return bad_usage("unknown option or missing value");
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument");
    if (!a->image || !a->filter || !a->out || a->step < 0)
        return bad_usage("--image, --filter, --step and --out are required");
    return 0;
}

static int usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

static int load(const char *path, dv_npy_t *a)
{
    dv_error_t err;
    if (dv_npy_load(path, a, &err) < 0) {
        fprintf(stderr, "drover: conv2d: %s: %s\n", path, err.text);
        return -1;
    }
    if (a->note[0])
        fprintf(stderr, "drover: conv2d: %s: note: %s to float64\n", path,
                a->note);
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : rc;
    dv_npy_t img = {0}, filt = {0};
    dv_matrix_t out = {0};
    dv_error_t err;
    rc = 1;
    if (load(a.image, &img) < 0 || load(a.filter, &filt) < 0)
        goto done;
    int threads = a.threads == 0 ? usable_cpus() : (int)a.threads;
    if (dv_conv2d(&img.m, &filt.m, (size_t)a.step, threads, &out, &err) < 0) {
        fprintf(stderr, "drover: conv2d: %s: %s\n", a.image, err.text);
        goto done;
    }
    if (dv_npy_save(a.out, &out, &err) < 0) {
        fprintf(stderr, "drover: conv2d: %s: %s\n", a.out, err.text);
        goto done;
    }
    rc = 0;
done:
    free(img.m.data);
    free(filt.m.data);
    free(out.data);
    return rc;
}
