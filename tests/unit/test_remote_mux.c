/* Relays of one process share its connection to a home node's data port
 * (src/lib/remote.c, remote_mux.c, and the server of src/multinode/mn_data.c),
 * on loopback: the test plays node 0, and "node 1" is a data-port server
 * in a child process (an agent has no relays of its own) serving the
 * test's queues.
 *   shared   200 relays, each with a put sent ahead, use one connection
 *            (one more socket in all), and every
 *            message comes back through them in order
 *   blocking a get blocked on one relay holds up no other relay
 *   fork     a child's copies of the relays work, on a connection of its
 *            own; the parent's go on
 *   joinable task_done, join, unfinished, hold, release and wait run
 *            on the home node's queue (ops 30-35)
 *   refused  a home agent out of files refuses the connection, and the
 *            relay's error says so (it used to wait in the backlog) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "multinode/mn.h"
#include "drover/drover.h"
#include "lib/remote.h"
#include "lib/remote_wire.h"
#include "lib/runtime.h"
#include "test_queue_util.h"

#define RELAYS 200

static const uint8_t token[DV_DATA_TOKEN] = "a test's data token, 32 bytes..";
static char dir[128];
static dv_queue_t *q[RELAYS];
static dv__remote_t *r[RELAYS];

/* Sockets this process has open (the server's queue files aside). */
static int open_sockets(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], to[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, to, sizeof(to) - 1);
        n += k > 7 && !strncmp(to, "socket:", 7);
    }
    if (d)
        closedir(d);
    return n;
}

/* This process is node 0 of 2; node 1's data port is port. */
static void node_table(int port)
{
    char path[256];
    snprintf(dir, sizeof(dir), "/tmp/dv_test_mux.%ld", (long)getpid());
    CHECK_EQ_INT(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/token", dir);
    FILE *f = fopen(path, "w");
    CHECK(f && fwrite(token, 1, sizeof(token), f) == sizeof(token));
    fclose(f);
    snprintf(path, sizeof(path), "%s/nodes", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "0 1 1 0 here 127.0.0.1 0\n1 2 1 0 there 127.0.0.1 %d\n", port);
    fclose(f);
    setenv(DV_ENV_RUNDIR, dir, 1);
    setenv(DV_ENV_NODE_TABLE, path, 1);
    setenv(DV_ENV_NODE_COUNT, "2", 1);
    setenv(DV_ENV_NODE_INDEX, "0", 1);
    CHECK_EQ_INT(dv__node_init(NULL), 0);
}

static void clean_dir(void)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/token", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/nodes", dir);
    unlink(path);
    rmdir(dir);
}

/* The home agent: a child that serves until told to stop ('q'), or to
 * run out of files ('f', answered once done). */
static int cmd[2], ack[2];

static void serve(void)
{
    dv_error_t err;
    int port = 0;
    int lfd = mn_data_listen("127.0.0.1", &port, &err);
    mn_data_t *d =
        lfd >= 0 ? mn_data_start(lfd, token, NULL, NULL, &err) : NULL;
    if (!d)
        port = 0;
    (void)!write(ack[1], &port, sizeof(port));
    char c;
    while (d && read(cmd[0], &c, 1) == 1 && c == 'f') {
        /* The connections of children that ended close first (the
         * listener and the test's own connection stay). */
        for (int i = 0; i < 1000 && open_sockets() > 2; i++)
            usleep(10000);
        int next = dup(0); /* the lowest free file: none from here on */
        close(next);
        struct rlimit low;
        getrlimit(RLIMIT_NOFILE, &low);
        low.rlim_cur = (rlim_t)next;
        setrlimit(RLIMIT_NOFILE, &low);
        (void)!write(ack[1], &port, sizeof(port));
    }
    mn_data_stop(&d);
    _exit(0);
}

static pid_t start_server(int *port)
{
    CHECK(pipe(cmd) == 0 && pipe(ack) == 0);
    pid_t pid = fork();
    if (pid == 0)
        serve();
    CHECK(read(ack[0], port, sizeof(*port)) == sizeof(*port) && *port > 0);
    return pid;
}

static void server_says(char c)
{
    int x;
    CHECK_EQ_INT(write(cmd[1], &c, 1), 1);
    if (c != 'q')
        CHECK(read(ack[0], &x, sizeof(x)) == sizeof(x));
}

static int put(dv__remote_t *x, int v)
{
    dv_error_t err;
    return dv__remote_op(x, DV_ROP_QUEUE_PUT, 10, &v, sizeof(v), NULL, NULL,
                         NULL, &err);
}

/* The next message of x: its int, or -1. */
static int get(dv__remote_t *x, double timeout_s)
{
    dv_error_t err;
    void *d = NULL;
    size_t n = 0;
    int v = -1;
    if (dv__remote_op(x, DV_ROP_QUEUE_GET, timeout_s, NULL, 0, NULL, &d, &n,
                      &err) == 0 &&
        n == sizeof(v))
        memcpy(&v, d, sizeof(v));
    free(d);
    return v;
}

static void shared(void)
{
    int before = open_sockets();
    for (int i = 0; i < RELAYS; i++)
        CHECK_EQ_INT(put(r[i], i), 0);
    int during = open_sockets();
    printf("shared: %d relays, %d more sockets\n", RELAYS, during - before);
    CHECK(during - before <= 1);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < RELAYS; i++)
            CHECK_EQ_INT(put(r[i], 1000 + i), 0);
        for (int i = 0; i < RELAYS; i++)
            CHECK_EQ_INT(get(r[i], 10), k ? 1000 + i : i);
    }
    for (int i = 0; i < RELAYS; i++)
        CHECK_EQ_INT(dv_queue_size(q[i]), 1);
    for (int i = 0; i < RELAYS; i++)
        CHECK_EQ_INT(get(r[i], 10), 1000 + i);
}

static void *blocked_get(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)get(r[0], 60);
}

static void blocking(void)
{
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, blocked_get, NULL), 0);
    usleep(100000); /* the get is on its way (it need not be for the test) */
    double t0 = tq_now();
    for (int i = 0; i < 100; i++) {
        CHECK_EQ_INT(put(r[1], i), 0);
        CHECK_EQ_INT(get(r[1], 10), i);
    }
    double dt = tq_now() - t0;
    printf("blocking: 100 round trips beside a blocked get in %.3f s\n", dt);
    CHECK(dt < 20);
    CHECK_EQ_INT(dv_queue_put(q[0], &(int){77}, sizeof(int), 1, NULL), 0);
    void *v;
    pthread_join(t, &v);
    CHECK_EQ_INT((intptr_t)v, 77);
}

static void forked(void)
{
    CHECK_EQ_INT(put(r[2], 5), 0); /* sent ahead: the parent's to settle */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(30);
        int ok = put(r[3], 6) == 0 && get(r[3], 10) == 6 && put(r[4], 7) == 0 &&
                 get(r[4], 10) == 7;
        _exit(ok ? 0 : 1);
    }
    CHECK_EQ_INT(tq_wait(pid), 0);
    CHECK_EQ_INT(get(r[2], 10), 5);
    CHECK_EQ_INT(put(r[3], 8), 0);
    CHECK_EQ_INT(get(r[3], 10), 8);
}

static dv_queue_t *jq;
static dv__remote_t *jr;

static int op(dv__remote_t *x, int what, double timeout_s, int32_t *value)
{
    dv_error_t err;
    return dv__remote_op(x, what, timeout_s, NULL, 0, value, NULL, NULL, &err);
}

static void *remote_join(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)op(jr, DV_ROP_QUEUE_JOIN, 60, NULL);
}

static void joinable(void)
{
    dv_handle_t h;
    CHECK((jq = dv_queue_create(0, NULL)) != NULL);
    CHECK_EQ_INT(dv_queue_handle(jq, &h), 0);
    CHECK((jr = dv__remote_open(&h, 1, NULL)) != NULL);
    int32_t n = -1;
    CHECK_EQ_INT(put(jr, 1), 0); /* sent ahead: the next op settles it */
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_UNFINISHED, 0, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_JOIN, 0, NULL), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_WAIT, 0, NULL), 0); /* not taken: */
    CHECK_EQ_INT(get(jr, 10), 1);
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_WAIT, 0.01, NULL), -1);
    CHECK_EQ_INT(errno, ETIMEDOUT);
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, remote_join, NULL), 0);
    usleep(50000);
    CHECK_EQ_INT(dv_queue_unfinished(jq), 1);
    CHECK_EQ_INT(op(r[7], DV_ROP_QUEUE_SIZE, 0, &n), 0); /* not held up */
    CHECK_EQ_INT(dv_queue_task_done(jq, NULL), 0);
    void *rc;
    pthread_join(t, &rc);
    CHECK_EQ_INT((intptr_t)rc, 0);
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_TASK_DONE, 0, NULL), -1);
    CHECK_EQ_INT(errno, ERANGE);
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_RELEASE, 0, NULL), -1);
    CHECK_EQ_INT(errno, ERANGE);
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_HOLD, 0, NULL), 0);
    CHECK_EQ_INT(dv_queue_hold(jq), 0);
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_RELEASE, 0, NULL), 0);
    CHECK_EQ_INT(dv_queue_put(jq, "x", 1, 0, NULL), 0); /* still open */
    CHECK_EQ_INT(dv_queue_release(jq), 0);
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_TASK_DONE, 0, NULL), 0);
    CHECK_EQ_INT(put(jr, 2), 0); /* the last release closed it: */
    CHECK_EQ_INT(op(jr, DV_ROP_QUEUE_SIZE, 0, &n), -1);
    CHECK_EQ_INT(errno, EPIPE); /* (an earlier put) */
    dv__remote_close(&jr);
    dv_queue_destroy(&jq);
}

/* The child's relay connects anew, while the home agent has no file left
 * to accept it with. */
static void refused(void)
{
    server_says('f');
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(30);
        dv_error_t err = {0};
        int rc = dv__remote_op(r[5], DV_ROP_QUEUE_SIZE, 0, NULL, 0, NULL, NULL,
                               NULL, &err);
        printf("refused: %s\n", err.text);
        fflush(stdout);
        _exit(rc < 0 && strcasestr(err.text, "too many open files") ? 0 : 1);
    }
    CHECK_EQ_INT(tq_wait(pid), 0);
}

int main(void)
{
    tq_setup("rmux");
    dv_error_t err;
    int port = 0;
    pid_t server = start_server(&port);
    node_table(port);
    for (int i = 0; i < RELAYS; i++) {
        dv_handle_t h;
        CHECK((q[i] = dv_queue_create(0, &err)) != NULL);
        CHECK_EQ_INT(dv_queue_handle(q[i], &h), 0);
        CHECK((r[i] = dv__remote_open(&h, 1, &err)) != NULL);
    }
    shared();
    blocking();
    forked();
    joinable();
    refused();
    for (int i = 0; i < RELAYS; i++) {
        dv__remote_close(&r[i]);
        dv_queue_destroy(&q[i]);
    }
    server_says('q');
    CHECK_EQ_INT(tq_wait(server), 0);
    dv__node_reset();
    clean_dir();
    CHECK_EQ_INT(tq_leftovers(), 0);
    return CHECK_DONE();
}
