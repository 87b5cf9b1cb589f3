/* telemetry_full's command line: defaults, both flag forms, and a clear
 * error for every kind of wrong value. */
#include <stdarg.h>
#include <string.h>

#include "check.h"
#include "options.h"

static int parse(struct tf_options *o, dv_error_t *err, int argc, ...)
{
    char *argv[32] = {"telemetry_full"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    err->text[0] = 0;
    return tf_options_parse(o, argc, argv, err);
}

static void test_defaults(void)
{
    struct tf_options o;
    dv_error_t err;
    CHECK_EQ_INT(parse(&o, &err, 1), 0);
    CHECK_EQ_INT(o.scipy_workers, 2);
    CHECK_EQ_INT(o.mnist_workers, 2);
    CHECK_EQ_INT(o.size, 1024);
    CHECK_EQ_INT(o.mem, 1LL << 30);
    CHECK_EQ_INT(o.batch_size, 64);
    CHECK_EQ_INT(o.test_batch_size, 1000);
    CHECK_EQ_INT(o.epochs, 14);
    CHECK(o.gamma == 0.7);
    CHECK_EQ_INT(o.seed, 1);
    CHECK(!o.bars && !o.no_cuda && !o.help);
    CHECK_EQ_INT(tf_options_images(&o), 1024);
    CHECK(o.interval == 1.0 && o.tail == 2.0);
    CHECK_EQ_INT(o.images, TF_IMAGES_RANDOM);
    CHECK_EQ_INT(o.gpu_slots, 1);
    CHECK_EQ_INT(parse(&o, &err, 3, "--gpu-slots", "3"), 0);
    CHECK_EQ_INT(o.gpu_slots, 3);
}

static void test_values(void)
{
    struct tf_options o;
    dv_error_t err;
    CHECK_EQ_INT(parse(&o, &err, 11, "--scipy_workers", "16",
                       "--mnist_workers=8", "--bars", "--no-cuda", "--epochs",
                       "3", "--images", "file:/data", "--interval=0.5"),
                 0);
    CHECK_EQ_INT(o.scipy_workers, 16);
    CHECK_EQ_INT(o.mnist_workers, 8);
    CHECK(o.bars && o.no_cuda);
    CHECK_EQ_INT(o.epochs, 3);
    CHECK_EQ_INT(o.images, TF_IMAGES_FILES);
    CHECK(!strcmp(o.images_dir, "/data"));
    CHECK(o.tail == 1.0);
    CHECK(tf_options_lr(&o, 0) == 0.5);
    CHECK(tf_options_lr(&o, 7) == 1.5);
    CHECK_EQ_INT(parse(&o, &err, 2, "-h"), 0);
    CHECK(o.help);
}

static void expect_error(const char *what, int argc, char *a, char *b)
{
    struct tf_options o;
    dv_error_t err;
    int rc = argc == 2 ? parse(&o, &err, 2, a) : parse(&o, &err, 3, a, b);
    CHECK_EQ_INT(rc, -1);
    if (!strstr(err.text, what)) {
        fprintf(stderr, "expected '%s' in '%s'\n", what, err.text);
        check_failures++;
    }
}

static void test_errors(void)
{
    expect_error("invalid int value: 'x'", 3, "--scipy_workers", "x");
    expect_error("at least 1", 3, "--scipy_workers", "0");
    expect_error("at least 1", 3, "--scipy_workers", "-2");
    expect_error("at least 2", 3, "--mnist_workers", "1");
    expect_error("at least 1", 3, "--size", "0");
    expect_error("less than one image", 3, "--mem", "1000");
    expect_error("unrecognized arguments: --frobnicate", 2, "--frobnicate",
                 NULL);
    expect_error("unrecognized arguments: stray", 2, "stray", NULL);
    expect_error("expected one argument", 2, "--epochs", NULL);
    expect_error("invalid float value", 3, "--gamma", "fast");
    expect_error("file:DIR", 3, "--images", "ones");
    expect_error("more than 0", 3, "--interval", "0");
    expect_error("at least 1", 3, "--gpu-slots", "0");
}

int main(void)
{
    test_defaults();
    test_values();
    test_errors();
    return CHECK_DONE();
}
