/* Tests of the conv2d command line: a good run against SciPy's result,
 * notes for converted inputs, and one "drover: conv2d: <file>: <reason>"
 * line with a non-zero exit for each kind of bad input or option.
 * Usage: test_conv2d_cli PATH-TO-conv2d TMPDIR */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "workloads/conv2d/npy.h"

extern char **environ;

static const char *exe, *tmp;
static char fixtures[4096];
static char errtext[4096];

/* Run conv2d with args; its exit status, stderr in errtext. */
static int run(const char *const *args)
{
    char errpath[4200];
    snprintf(errpath, sizeof(errpath), "%s/stderr.txt", tmp);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, errpath,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const char *argv[32] = {exe};
    int n = 1;
    while (args[n - 1] && n < 31) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    pid_t pid;
    int status = -1;
    if (posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, environ) == 0)
        waitpid(pid, &status, 0);
    posix_spawn_file_actions_destroy(&fa);
    FILE *f = fopen(errpath, "r");
    size_t len = f ? fread(errtext, 1, sizeof(errtext) - 1, f) : 0;
    errtext[len] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *fx(const char *name)
{
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", fixtures, name);
    return buf[k];
}

static const char *tmpfile_with(const char *name, const void *data, size_t len)
{
    static char path[4200];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
    return path;
}

/* Exactly one line, "drover: conv2d: " + file + ": " + something. */
static int one_error_line(const char *file)
{
    char want[4300];
    snprintf(want, sizeof(want), "drover: conv2d: %s: ", file);
    size_t n = strlen(errtext);
    char *nl = strchr(errtext, '\n');
    int ok = strncmp(errtext, want, strlen(want)) == 0 && nl == errtext + n - 1;
    if (!ok)
        fprintf(stderr, "  stderr was: %s", errtext);
    return ok;
}

static void test_good_run(void)
{
    char out[4200];
    snprintf(out, sizeof(out), "%s/out.npy", tmp);
    const char *args[] = {"--image",   fx("float32_image.npy"),
                          "--filter",  fx("float32_filter.npy"),
                          "--step",    "5",
                          "--out",     out,
                          "--threads", "2",
                          NULL};
    CHECK_EQ_INT(run(args), 0);
    CHECK(strstr(errtext, "note: converted from float32") != NULL);
    dv_npy_t got, want;
    CHECK(dv_npy_load(out, &got, NULL) == 0);
    CHECK(dv_npy_load(fx("float32_want.npy"), &want, NULL) == 0);
    CHECK(got.m.rows == want.m.rows && got.m.cols == want.m.cols);
    double err = 0, big = 0;
    for (size_t k = 0; k < want.m.rows * want.m.cols; k++) {
        err = fmax(err, fabs(got.m.data[k] - want.m.data[k]));
        big = fmax(big, fabs(want.m.data[k]));
    }
    CHECK(err <= 1e-12 * big);
    free(got.m.data);
    free(want.m.data);
}

/* A .npy 1.0 file with this header text and 8 zero bytes of data. */
static size_t npy_bytes(unsigned char *buf, const char *header)
{
    size_t h = strlen(header);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)h;
    buf[9] = 0;
    memcpy(buf + 10, header, h);
    memset(buf + 10 + h, 0, 8);
    return 10 + h + 8;
}

static void expect_refused(const char *path, const char *out)
{
    const char *args[] = {"--image", path, "--filter", fx("small_filter.npy"),
                          "--step",  "1",  "--out",    out,
                          NULL};
    CHECK_EQ_INT(run(args), 1);
    CHECK(one_error_line(path));
}

static void test_bad_files(void)
{
    char out[4200];
    snprintf(out, sizeof(out), "%s/bad-out.npy", tmp);
    expect_refused(tmpfile_with("empty.npy", "", 0), out);
    expect_refused(tmpfile_with("magic.npy", "PK\x03\x04 not numpy", 14), out);
    expect_refused(tmpfile_with("short.npy", "\x93NUMPY\x01\x00\x40", 9), out);
    const char *headers[] = {
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000, 1000), }",
        "{'descr': '|O', 'fortran_order': False, 'shape': (1, 1), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 1), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': "
        "(123456789012, 123456789012), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1",
    };
    for (size_t k = 0; k < sizeof(headers) / sizeof(headers[0]); k++) {
        unsigned char buf[256];
        char name[32];
        snprintf(name, sizeof(name), "bad%zu.npy", k);
        expect_refused(tmpfile_with(name, buf, npy_bytes(buf, headers[k])),
                       out);
    }
    const char *args[] = {"--image",  fx("small_image.npy"),
                          "--filter", "/nonexistent/f.npy",
                          "--step",   "1",
                          "--out",    out,
                          NULL};
    CHECK_EQ_INT(run(args), 1);
    CHECK(one_error_line("/nonexistent/f.npy"));
    const char *noout[] = {"--image",  fx("small_image.npy"),
                           "--filter", fx("small_filter.npy"),
                           "--step",   "1",
                           "--out",    "/nonexistent/o.npy",
                           NULL};
    CHECK_EQ_INT(run(noout), 1);
    CHECK(one_error_line("/nonexistent/o.npy"));
}

static void test_bad_options(void)
{
    const char *img = fx("small_image.npy"), *f = fx("small_filter.npy");
    const char *zero[] = {"--image", img,     "--filter", f,   "--step",
                          "0",       "--out", "x.npy",    NULL};
    CHECK_EQ_INT(run(zero), 2);
    CHECK(strncmp(errtext, "drover: conv2d: --step", 22) == 0);
    const char *missing[] = {"--image", img, NULL};
    CHECK_EQ_INT(run(missing), 2);
    const char *junk[] = {"--image", img,     "--filter", f,   "--step",
                          "2x",      "--out", "x.npy",    NULL};
    CHECK_EQ_INT(run(junk), 2);
    const char *threads[] = {"--image",   img,  "--filter", f,
                             "--step",    "2",  "--out",    "x.npy",
                             "--threads", "-1", NULL};
    CHECK_EQ_INT(run(threads), 2);
    const char *help[] = {"--help", NULL};
    CHECK_EQ_INT(run(help), 0);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_conv2d_cli CONV2D TMPDIR\n");
        return 2;
    }
    exe = argv[1];
    tmp = argv[2];
    mkdir(tmp, 0700);
    const char *src = getenv("DROVER_SOURCE_DIR");
    snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/conv2d",
             src ? src : ".");
    test_good_run();
    test_bad_files();
    test_bad_options();
    return CHECK_DONE();
}
