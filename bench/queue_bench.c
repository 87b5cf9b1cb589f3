/* Queue benchmarks, drover side: round trip of a small message between two
 * processes, one-way bandwidth of big messages, and single-thread memcpy
 * bandwidth for reference. Prints one number, the median of
 * RUNS runs after a warm-up run.
 *
 *   queue_bench rtt BYTES COUNT     -> microseconds per round trip
 *   queue_bench bw BYTES COUNT      -> GB/s one way (10^9 bytes/s)
 *   queue_bench memcpy BYTES COUNT  -> GB/s, buffers rotating (uncached)
 *   queue_bench memcpy_hot BYTES COUNT -> GB/s, the same buffers (cached)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/drover.h"

#define RUNS 5 /* measured runs, after a warm-up run; prints the median */

/* maxsize of the bandwidth queue, as the baseline's: DROVER_BENCH_MAXSIZE
 * (default 2; 0 is unbounded). */
static size_t bw_maxsize(void)
{
    const char *s = getenv("DROVER_BENCH_MAXSIZE");
    return s ? strtoul(s, NULL, 10) : 2;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: queue_bench: %s: %s\n", what, err->text);
    return -1;
}

static int get_one(dv_queue_t *q, dv_error_t *err)
{
    void *d;
    size_t n;
    if (dv_queue_get(q, &d, &n, 60, err) < 0)
        return -1;
    free(d);
    return 0;
}

/* Child: echo every message of a back on b, until a closes. */
static void echo(dv_queue_t *a, dv_queue_t *b)
{
    void *d;
    size_t n;
    while (dv_queue_get(a, &d, &n, 60, NULL) == 0) {
        dv_queue_put(b, d, n, 60, NULL);
        free(d);
    }
    _exit(0);
}

static double rtt(size_t bytes, long count)
{
    dv_error_t err;
    dv_queue_t *a = dv_queue_create(0, &err), *b = dv_queue_create(0, &err);
    char *msg = calloc(1, bytes);
    if (!a || !b || !msg)
        return fail("create", &err);
    pid_t pid = fork();
    if (pid == 0)
        echo(a, b);
    double runs[RUNS + 1];
    for (int run = 0; run < RUNS + 1; run++) {
        double t0 = now();
        for (long i = 0; i < count; i++) {
            if (dv_queue_put(a, msg, bytes, 60, &err) < 0 ||
                get_one(b, &err) < 0)
                return fail("round trip", &err);
        }
        runs[run] = (now() - t0) * 1e6 / (double)count;
    }
    dv_queue_close(a);
    waitpid(pid, NULL, 0);
    dv_queue_destroy(&a);
    dv_queue_destroy(&b);
    free(msg);
    return median(runs + 1, RUNS); /* run 0 warms up */
}

/* Child: put count messages of bytes, RUNS + 1 times. */
static void produce(dv_queue_t *q, size_t bytes, long count)
{
    char *msg = malloc(bytes);
    if (!msg)
        _exit(1);
    memset(msg, 1, bytes);
    for (long i = 0; i < (RUNS + 1) * count; i++)
        if (dv_queue_put(q, msg, bytes, 60, NULL) < 0)
            _exit(1);
    _exit(0);
}

static double bandwidth(size_t bytes, long count)
{
    dv_error_t err;
    dv_queue_t *q = dv_queue_create(bw_maxsize(), &err);
    if (!q)
        return fail("create", &err);
    pid_t pid = fork();
    if (pid == 0)
        produce(q, bytes, count);
    double runs[RUNS + 1];
    for (int run = 0; run < RUNS + 1; run++) {
        if (get_one(q, &err) < 0) /* the clock starts at a first message */
            return fail("get", &err);
        double t0 = now();
        for (long i = 1; i < count; i++)
            if (get_one(q, &err) < 0)
                return fail("get", &err);
        runs[run] = (double)bytes * (double)(count - 1) / (now() - t0) / 1e9;
    }
    waitpid(pid, NULL, 0);
    dv_queue_destroy(&q);
    return median(runs + 1, RUNS);
}

/* Single-thread memcpy of bytes-sized blocks. hot: the same two buffers
 * each time (they stay in the caches); cold: source and destination rotate
 * through 256 MiB each, so each copy goes to and from memory. */
static double memcpy_bw(size_t bytes, long count, int hot)
{
    size_t span = hot ? bytes : ((size_t)256 << 20) / bytes * bytes;
    char *src = malloc(span), *dst = malloc(span);
    if (!src || !dst || span == 0)
        return -1;
    memset(src, 1, span);
    memset(dst, 2, span);
    size_t slots = span / bytes;
    double runs[RUNS + 1];
    for (int run = 0; run < RUNS + 1; run++) {
        double t0 = now();
        for (long i = 0; i < count; i++) {
            size_t k = (size_t)i % slots * bytes;
            memcpy(dst + k, src + (span - bytes - k), bytes);
            __asm__ __volatile__("" : : "r"(dst) : "memory");
        }
        runs[run] = (double)bytes * (double)count / (now() - t0) / 1e9;
    }
    free(src);
    free(dst);
    return median(runs + 1, RUNS);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr,
                "usage: queue_bench rtt|bw|memcpy|memcpy_hot BYTES COUNT\n");
        return 2;
    }
    char *end;
    errno = 0;
    unsigned long long bytes = strtoull(argv[2], &end, 10);
    long count = strtol(argv[3], NULL, 10);
    if (errno || *end || bytes > DV_MESSAGE_MAX || count < 2) {
        fprintf(stderr, "drover: queue_bench: bad size or count\n");
        return 2;
    }
    double v;
    if (strcmp(argv[1], "rtt") == 0)
        v = rtt(bytes, count);
    else if (strcmp(argv[1], "bw") == 0)
        v = bandwidth(bytes, count);
    else if (strcmp(argv[1], "memcpy") == 0)
        v = memcpy_bw(bytes, count, 0);
    else if (strcmp(argv[1], "memcpy_hot") == 0)
        v = memcpy_bw(bytes, count, 1);
    else {
        fprintf(stderr, "drover: queue_bench: unknown mode '%s'\n", argv[1]);
        return 2;
    }
    if (v < 0)
        return 1;
    printf("%.3f\n", v);
    return 0;
}
