/* Tests of the mnist_train program (beside this test in the build tree):
 * a short run prints the per-epoch and final lines; bad flags, missing or
 * corrupt data and an absent GPU give one clear line and a non-zero
 * exit. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char prog[1100], tmp[] = "/tmp/drover-test-cli-XXXXXX";

/* Run mnist_train ARGS; returns its exit status, output (both streams)
 * in out. */
static int run(const char *args, char *out, size_t size)
{
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", prog, args);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, size - 1, f) : 0;
    out[n] = '\0';
    int st = f ? pclose(f) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_idx(const char *name, int ndim, unsigned n, int truncate)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "wb");
    unsigned char head[16] = {0,       0,       8,      (unsigned char)ndim,
                              n >> 24, n >> 16, n >> 8, n,
                              0,       0,       0,      28,
                              0,       0,       0,      28};
    fwrite(head, 1, ndim == 3 ? 16 : 8, f);
    size_t body = ndim == 3 ? n * 784 : n;
    for (size_t i = 0; i < body - (truncate ? 5 : 0); i++)
        fputc(ndim == 3 ? (int)((i * 131) % 256) : (int)(i % 10), f);
    fclose(f);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[1024], out[16384], args[600];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    snprintf(prog, sizeof prog, "%s/mnist_train", dirname(self));
    if (!mkdtemp(tmp) || access(prog, X_OK) != 0) {
        fprintf(stderr, "%s: no %s\n", argv[0], prog);
        return 1;
    }
    write_idx("train-images-idx3-ubyte", 3, 60, 0);
    write_idx("train-labels-idx1-ubyte", 1, 60, 0);
    write_idx("t10k-images-idx3-ubyte", 3, 30, 0);
    write_idx("t10k-labels-idx1-ubyte", 1, 30, 0);

    snprintf(args, sizeof args,
             "--no-cuda --epochs 2 --batch-size 16 --test-batch-size 7 "
             "--threads 1 --lr 0.5 --data-dir %s",
             tmp);
    CHECK_EQ_INT(run(args, out, sizeof out), 0);
    CHECK(strstr(out, "dataset: MNIST (60 training, 30 test images)"));
    CHECK(strstr(out, "epoch 1: test loss ") && strstr(out, "epoch 2: "));
    CHECK(strstr(out, "\nFinal test for learning rate 0.5: loss: "));
    printf("%s", out);

    CHECK_EQ_INT(run("--batch-size x", out, sizeof out), 2);
    CHECK(strstr(out, "drover: mnist_train: bad value 'x' for --batch-size"));
    CHECK_EQ_INT(run("--no-cuda --device 0", out, sizeof out), 2);
    CHECK_EQ_INT(run("--data-dir /nonexistent/mnist", out, sizeof out), 1);
    CHECK(strstr(out, "no MNIST or Fashion-MNIST IDX files in /nonexistent"));
    CHECK(strstr(out, "scripts/deps build"));
    snprintf(args, sizeof args, "--device 1000 --epochs 1 --data-dir %s", tmp);
    CHECK_EQ_INT(run(args, out, sizeof out), 1);
    CHECK(strstr(out, "drover: mnist_train: GPU 1000: "));
    write_idx("t10k-labels-idx1-ubyte", 1, 30, 1);
    snprintf(args, sizeof args, "--no-cuda --data-dir %s", tmp);
    CHECK_EQ_INT(run(args, out, sizeof out), 1);
    CHECK(strstr(out, "drover: mnist_train: ") && strstr(out, "t10k-labels"));
    printf("%s", out);

    snprintf(args, sizeof args, "rm -rf %s", tmp);
    CHECK(system(args) == 0);
    return CHECK_DONE();
}
