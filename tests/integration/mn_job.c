/* A drover program for the multi-node scripts. Usage: dv_mn_job MODE
 *   table     print "nodes N" and one "node I HOST" line per node
 *   spread N  start N processes with the default placement; each prints
 *             "on HOST" and returns its index; check every exit code;
 *             print "placed I HOST" per process
 *   kill      start a sleeping process on the last node, kill it, print
 *             its exit code
 *   hang      one sleeping process on every node; print "ready"; sleep */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/drover.h"

static int die(const char *what, const dv_error_t *err)
{
    fprintf(stderr, "drover: mn_job: %s: %s\n", what, err->text);
    exit(1);
}

DV_TASK(where)(const void *arg, size_t len, dv_result_t *res)
{
    (void)res;
    int idx = len == sizeof(int) ? *(const int *)arg : -1;
    char host[64] = "?";
    gethostname(host, sizeof(host) - 1);
    printf("on %s index %d node %d\n", host, idx, dv_node_self());
    fflush(stdout);
    return idx & 0x7f;
}

DV_TASK(sleeper)(const void *arg, size_t len, dv_result_t *res)
{
    (void)arg;
    (void)len;
    (void)res;
    for (;;)
        pause();
    return 0;
}

static void print_table(void)
{
    int n = dv_node_count();
    printf("nodes %d\n", n);
    for (int i = 0; i < n; i++) {
        dv_node_info_t ni;
        dv_error_t err;
        if (dv_node_get(i, &ni, &err) < 0)
            die("node", &err);
        printf("node %d %s %s cpus %d\n", ni.index, ni.hostname,
               ni.address[0] ? ni.address : "-", ni.cpus);
    }
}

static int spread(int n)
{
    dv_process_t *p[64];
    dv_error_t err;
    if (n < 1 || n > 64)
        return 2;
    for (int i = 0; i < n; i++) {
        if (!(p[i] = dv_process_start("where", &i, sizeof(i), NULL, &err)))
            die("start", &err);
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int code = -1;
        if (dv_process_join(p[i], 30, &err) < 0)
            die("join", &err);
        dv_process_exitcode(p[i], &code);
        dv_node_info_t ni;
        dv_node_get(dv_process_node(p[i]), &ni, &err);
        printf("placed %d %s code %d\n", i, ni.hostname, code);
        bad |= code != i;
        dv_process_destroy(&p[i]);
    }
    return bad;
}

static int kill_one(void)
{
    dv_error_t err;
    dv_placement_t w = DV_PLACEMENT_DEFAULT;
    w.policy = DV_POLICY_NODE;
    w.node = dv_node_count() - 1;
    dv_process_t *p = dv_process_start("sleeper", NULL, 0, &w, &err);
    if (!p)
        die("start", &err);
    if (dv_process_join(p, 0.3, &err) == 0 || !dv_process_is_alive(p))
        return 1;
    if (dv_process_kill(p) < 0)
        return 1;
    if (dv_process_join(p, 10, &err) < 0)
        die("join", &err);
    int code = 0;
    dv_process_exitcode(p, &code);
    printf("killed code %d\n", code);
    dv_process_destroy(&p);
    return code == -SIGKILL ? 0 : 1;
}

static int hang(void)
{
    dv_error_t err;
    for (int i = 0; i < dv_node_count(); i++) {
        dv_process_t *p = dv_process_start("sleeper", NULL, 0, NULL, &err);
        if (!p)
            die("start", &err);
        dv_process_destroy(&p);
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
    return 0;
}

int main(int argc, char **argv)
{
    dv_error_t err;
    if (dv_init(&argc, &argv, &err) < 0)
        die("dv_init", &err);
    if (argc < 2)
        return 2;
    int rc = 2;
    if (!strcmp(argv[1], "table")) {
        print_table();
        rc = 0;
    } else if (!strcmp(argv[1], "spread") && argc > 2) {
        rc = spread(atoi(argv[2]));
    } else if (!strcmp(argv[1], "kill")) {
        rc = kill_one();
    } else if (!strcmp(argv[1], "hang")) {
        rc = hang();
    }
    fflush(stdout);
    dv_finalize();
    return rc;
}
