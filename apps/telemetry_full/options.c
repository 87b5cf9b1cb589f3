/* telemetry_full's command line, parsed the way the seed's argparse parser
 * reads it (--flag VALUE and --flag=VALUE), with every value checked before
 * anything starts. */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static const char help_text[] =
    "usage: telemetry_full [-h] [--scipy_workers SCIPY_WORKERS]\n"
    "                      [--mnist_workers MNIST_WORKERS] [--bars] "
    "[--no-cuda]\n"
    "                      [--size SIZE] [--mem MEM] [--batch-size N]\n"
    "                      [--test-batch-size N] [--epochs N] [--gamma M]\n"
    "                      [--seed S] [--data-dir DIR] [--images KIND]\n"
    "                      [--interval S] [--tail S] [--telemetry-log FILE]\n"
    "                      [--telemetry-plot FILE] [--gpu-slots N]\n"
    "\n"
    "SciPy and MNIST test with telemetry\n"
    "\n"
    "options:\n"
    "  -h, --help            show this help message and exit\n"
    "  --scipy_workers SCIPY_WORKERS\n"
    "                        number of scipy workers (default: 2)\n"
    "  --mnist_workers MNIST_WORKERS\n"
    "                        number of mnist workers (default: 2)\n"
    "  --bars                uses tqdm bars to print telemetry info\n"
    "  --no-cuda             disables CUDA training\n"
    "  --size SIZE           size of the array (default: 1024)\n"
    "  --mem MEM             overall footprint of image dataset to process\n"
    "                        (default: 1024^3)\n"
    "  --batch-size N        input batch size for training (default: 64)\n"
    "  --test-batch-size N   input batch size for testing (default: 1000)\n"
    "  --epochs N            number of epochs to train (default: 14)\n"
    "  --gamma M             Learning rate step gamma (default: 0.7)\n"
    "  --seed S              random seed (default: 1)\n"
    "  --data-dir DIR        MNIST data directory (default: the one "
    "scripts/deps\n"
    "                        installs)\n"
    "  --images KIND         conv images: zeros, random or file:DIR "
    "(default:\n"
    "                        random)\n"
    "  --interval S          seconds between telemetry samples (default: "
    "1.0)\n"
    "  --tail S              seconds of telemetry after the jobs end "
    "(default: two\n"
    "                        intervals)\n"
    "  --telemetry-log FILE  write every sample to FILE as JSON lines\n"
    "  --telemetry-plot FILE\n"
    "                        write an SVG timeline of the telemetry to FILE "
    "at the\n"
    "                        end\n"
    "  --gpu-slots N         MNIST workers that train on one GPU at once "
    "(default:\n"
    "                        1)\n";

void tf_options_print_help(FILE *out)
{
    fputs(help_text, out);
}

static int parse_ll(const char *flag, const char *s, long long min,
                    long long *out, dv_error_t *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return dv__errprintf(err, EINVAL,
                             "argument %s: invalid int value: '%s'", flag, s);
    if (v < min)
        return dv__errprintf(err, EINVAL, "argument %s: must be at least %lld",
                             flag, min);
    *out = v;
    return 0;
}

static int parse_int(const char *flag, const char *s, int min, int *out,
                     dv_error_t *err)
{
    long long v;
    if (parse_ll(flag, s, min, &v, err) < 0)
        return -1;
    if (v > INT_MAX)
        return dv__errprintf(err, EINVAL, "argument %s: too large: '%s'", flag,
                             s);
    *out = (int)v;
    return 0;
}

static int parse_seconds(const char *flag, const char *s, bool zero_ok,
                         double *out, dv_error_t *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return dv__errprintf(err, EINVAL,
                             "argument %s: invalid float value: '%s'", flag, s);
    if (v < 0 || (!zero_ok && v == 0))
        return dv__errprintf(err, EINVAL, "argument %s: must be %s 0", flag,
                             zero_ok ? "at least" : "more than");
    *out = v;
    return 0;
}

static int parse_images(struct tf_options *opt, const char *s, dv_error_t *err)
{
    if (strcmp(s, "random") == 0) {
        opt->images = TF_IMAGES_RANDOM;
    } else if (strcmp(s, "zeros") == 0) {
        opt->images = TF_IMAGES_ZEROS;
    } else if (strncmp(s, "file:", 5) == 0 && s[5]) {
        opt->images = TF_IMAGES_FILES;
        opt->images_dir = s + 5;
    } else {
        return dv__errprintf(err, EINVAL,
                             "argument --images: expected zeros, random or "
                             "file:DIR, got '%s'",
                             s);
    }
    return 0;
}

static void set_defaults(struct tf_options *opt)
{
    *opt = (struct tf_options){
        .scipy_workers = 2,
        .mnist_workers = 2,
        .size = 1024,
        .mem = 1024LL * 1024 * 1024,
        .batch_size = 64,
        .test_batch_size = 1000,
        .epochs = 14,
        .gamma = 0.7,
        .seed = 1,
        .images = TF_IMAGES_RANDOM,
        .interval = 1.0,
        .tail = -1,
        .gpu_slots = 1,
    };
}

/* Apply one flag with its value (NULL for switches). */
static int apply(struct tf_options *opt, const char *flag, const char *val,
                 dv_error_t *err)
{
    if (!strcmp(flag, "--scipy_workers"))
        return parse_int(flag, val, 1, &opt->scipy_workers, err);
    if (!strcmp(flag, "--mnist_workers"))
        return parse_int(flag, val, 1, &opt->mnist_workers, err);
    if (!strcmp(flag, "--size"))
        return parse_ll(flag, val, 1, &opt->size, err);
    if (!strcmp(flag, "--mem"))
        return parse_ll(flag, val, 1, &opt->mem, err);
    if (!strcmp(flag, "--batch-size"))
        return parse_int(flag, val, 1, &opt->batch_size, err);
    if (!strcmp(flag, "--test-batch-size"))
        return parse_int(flag, val, 1, &opt->test_batch_size, err);
    if (!strcmp(flag, "--epochs"))
        return parse_int(flag, val, 1, &opt->epochs, err);
    if (!strcmp(flag, "--seed"))
        return parse_ll(flag, val, 0, &opt->seed, err);
    if (!strcmp(flag, "--gamma"))
        return parse_seconds(flag, val, true, &opt->gamma, err);
    if (!strcmp(flag, "--interval"))
        return parse_seconds(flag, val, false, &opt->interval, err);
    if (!strcmp(flag, "--tail"))
        return parse_seconds(flag, val, true, &opt->tail, err);
    if (!strcmp(flag, "--images"))
        return parse_images(opt, val, err);
    if (!strcmp(flag, "--gpu-slots"))
        return parse_int(flag, val, 1, &opt->gpu_slots, err);
    if (!strcmp(flag, "--data-dir"))
        opt->data_dir = val;
    else if (!strcmp(flag, "--telemetry-log"))
        opt->telemetry_log = val;
    else if (!strcmp(flag, "--telemetry-plot"))
        opt->telemetry_plot = val;
    return 0;
}

static bool is_switch(const char *flag, struct tf_options *opt)
{
    if (!strcmp(flag, "-h") || !strcmp(flag, "--help"))
        return opt->help = true;
    if (!strcmp(flag, "--bars"))
        return opt->bars = true;
    if (!strcmp(flag, "--no-cuda"))
        return opt->no_cuda = true;
    return false;
}

static bool takes_value(const char *flag)
{
    static const char *const flags[] = {
        "--scipy_workers", "--mnist_workers", "--size",
        "--mem",           "--batch-size",    "--test-batch-size",
        "--epochs",        "--gamma",         "--seed",
        "--data-dir",      "--images",        "--interval",
        "--tail",          "--telemetry-log", "--telemetry-plot",
        "--gpu-slots",
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (!strcmp(flag, flags[i]))
            return true;
    return false;
}

static int check(const struct tf_options *opt, dv_error_t *err)
{
    if (opt->mnist_workers < 2)
        return dv__errprintf(err, EINVAL,
                             "argument --mnist_workers: must be at least 2 "
                             "(learning rates are 0.5 + i / (n - 1))");
    if (opt->size > 46340 || opt->mem / opt->size < opt->size)
        return dv__errprintf(err, EINVAL,
                             "argument --mem: %lld is less than one image of "
                             "--size %lld squared",
                             opt->mem, opt->size);
    return 0;
}

int tf_options_parse(struct tf_options *opt, int argc, char **argv,
                     dv_error_t *err)
{
    set_defaults(opt);
    for (int i = 1; i < argc; i++) {
        char flag[64];
        const char *arg = argv[i], *val = NULL, *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
        if (n >= sizeof(flag) || arg[0] != '-')
            return dv__errprintf(err, EINVAL, "unrecognized arguments: %s",
                                 arg);
        memcpy(flag, arg, n);
        flag[n] = 0;
        if (!eq && is_switch(flag, opt))
            continue;
        if (!takes_value(flag))
            return dv__errprintf(err, EINVAL, "unrecognized arguments: %s",
                                 arg);
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return dv__errprintf(err, EINVAL,
                                 "argument %s: expected one "
                                 "argument",
                                 flag);
        if (apply(opt, flag, val, err) < 0)
            return -1;
    }
    if (opt->tail < 0)
        opt->tail = 2 * opt->interval;
    return opt->help ? 0 : check(opt, err);
}

long long tf_options_images(const struct tf_options *opt)
{
    return opt->mem / (opt->size * opt->size);
}

double tf_options_lr(const struct tf_options *opt, int i)
{
    /* The seed's expression, in its order, so the printed rates match. */
    return 1.0 / (opt->mnist_workers - 1) * i + 0.5;
}
