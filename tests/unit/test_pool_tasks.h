/* Tasks and helpers shared by the pool tests (each test program includes
 * this once). Items are small native-endian integers unless said. */
#ifndef DROVER_TEST_POOL_TASKS_H
#define DROVER_TEST_POOL_TASKS_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "drover/drover.h"

static uint32_t item_u32(const void *arg, size_t len)
{
    uint32_t v = 0;
    if (len == sizeof(v))
        memcpy(&v, arg, sizeof(v));
    return v;
}

/* Result: 2 * the item. */
DV_TASK(twice)(const void *arg, size_t len, dv_result_t *result)
{
    uint64_t v = 2 * (uint64_t)item_u32(arg, len);
    return dv_result_set(result, &v, sizeof(v)) < 0 ? 1 : 0;
}

/* Result: the item's bytes. */
DV_TASK(echo)(const void *arg, size_t len, dv_result_t *result)
{
    return dv_result_set(result, arg, len) < 0 ? 1 : 0;
}

/* Returns 3 for odd items, 0 for even ones. */
DV_TASK(fail_odd)(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    return item_u32(arg, len) % 2 ? 3 : 0;
}

/* Sleeps the item's number of milliseconds; result: the item. */
DV_TASK(sleep_ms)(const void *arg, size_t len, dv_result_t *result)
{
    uint32_t ms = item_u32(arg, len);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return dv_result_set(result, &ms, sizeof(ms)) < 0 ? 1 : 0;
}

/* Result: the worker's pid. */
DV_TASK(worker_pid)(const void *arg, size_t len, dv_result_t *result)
{
    (void)arg;
    (void)len;
    int32_t pid = (int32_t)getpid();
    return dv_result_set(result, &pid, sizeof(pid)) < 0 ? 1 : 0;
}

/* Item 1000 + N: dies by signal N; 2000 + N: calls exit(N); else twice. */
DV_TASK(die_on)(const void *arg, size_t len, dv_result_t *result)
{
    uint32_t v = item_u32(arg, len);
    if (v >= 1000 && v < 1100)
        kill(getpid(), (int)(v - 1000));
    if (v >= 2000 && v < 2100)
        exit((int)(v - 2000));
    uint64_t r = 2 * (uint64_t)v;
    return dv_result_set(result, &r, sizeof(r)) < 0 ? 1 : 0;
}

/* Item: 8 bytes (size of the result wanted, seed) then filler of any
 * length that must be seed + i. Result: size bytes of seed * 3 + i. */
DV_TASK(big_echo)(const void *arg, size_t len, dv_result_t *result)
{
    if (len < 8)
        return 2;
    const unsigned char *b = arg;
    uint32_t size, seed;
    memcpy(&size, b, 4);
    memcpy(&seed, b + 4, 4);
    for (size_t i = 8; i < len; i++)
        if (b[i] != (unsigned char)(seed + i))
            return 4;
    unsigned char *out = malloc(size ? size : 1);
    if (!out)
        return 5;
    for (size_t i = 0; i < size; i++)
        out[i] = (unsigned char)(seed * 3 + i);
    int r = dv_result_set(result, out, size);
    free(out);
    return r < 0 ? 6 : 0;
}

__attribute__((unused)) static uint64_t result_u64(const dv_item_result_t *r)
{
    uint64_t v = UINT64_MAX;
    if (r->len == sizeof(v))
        memcpy(&v, r->data, sizeof(v));
    return v;
}

__attribute__((unused)) static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* n items 0..n-1 (values[i] = base + i). */
__attribute__((unused)) static dv_item_t *u32_items(uint32_t *values, size_t n,
                                                    uint32_t base)
{
    dv_item_t *items = calloc(n ? n : 1, sizeof(*items));
    for (size_t i = 0; i < n; i++) {
        values[i] = base + (uint32_t)i;
        items[i].data = &values[i];
        items[i].len = sizeof(uint32_t);
    }
    return items;
}

/* Wait up to timeout_s for process pid to be gone. */
__attribute__((unused)) static bool pid_gone(pid_t pid, double timeout_s)
{
    for (double t = 0; t < timeout_s; t += 0.01) {
        if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
            return pid > 0;
        usleep(10000);
    }
    return false;
}

/* Segments this process's pools left in /dev/shm. */
__attribute__((unused)) static int pool_segments_left(void)
{
    char tag[64];
    snprintf(tag, sizeof(tag), ".pool%ld-", (long)getpid());
    DIR *d = opendir("/dev/shm");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, "drover.", 7) == 0 && strstr(e->d_name, tag))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void init_or_die(int argc, char **argv)
{
    dv_error_t err = {{0}};
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "drover: dv_init: %s\n", err.text);
        exit(1);
    }
}

#endif
