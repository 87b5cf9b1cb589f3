/* The node service's client of its host's fork server
 * (src/multinode/mn_host.c) against a scripted test double of that server
 * (a thread): an EXITED message read by the answer to a start is not
 * waited for again when the service then looks at the readiness it saw
 * before (it used to wait 3 s and take the host as gone), several EXITED
 * messages are handled at one look, and a closed connection is the end. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "lib/msg.h"
#include "multinode/mn_host.h"

#define HOST_PID 4321 /* names the socket only */
#define TASK_PID 4242

struct server {
    int lfd;
    int step[2]; /* a byte from the test: do the next step */
};

static int send_exited(int fd, uint32_t slot, int32_t pid, int32_t code)
{
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_u32(&w, slot);
    dv__msgw_i32(&w, pid);
    dv__msgw_i32(&w, code);
    int rc = dv__msg_send(fd, DV_MSG_EXITED, &w, NULL, 0, -1);
    dv__msgw_free(&w);
    return rc;
}

static int send_ok(int fd, int32_t v)
{
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_i32(&w, v);
    int rc = dv__msg_send(fd, DV_MSG_OK, &w, NULL, 0, -1);
    dv__msgw_free(&w);
    return rc;
}

/* Read one message of type want (its descriptor closed). 0 or -1. */
static int expect(int fd, uint16_t want)
{
    uint16_t type;
    void *body;
    size_t len;
    int pfd = -1;
    if (dv__msg_recv(fd, &type, &body, &len, &pfd) < 0)
        return -1;
    free(body);
    if (pfd >= 0)
        close(pfd);
    return type == want ? 0 : -1;
}

static void wait_step(struct server *sv)
{
    char c;
    if (read(sv->step[0], &c, 1) != 1)
        abort();
}

/* HELLO; an end, then the answer to a START; at the next step three
 * ends; at the next, the end of the connection. */
static void *serve(void *arg)
{
    struct server *sv = arg;
    int fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0 || expect(fd, DV_MSG_HELLO) < 0 || send_ok(fd, HOST_PID) < 0 ||
        send_exited(fd, 5, 111, 3) < 0 || expect(fd, DV_MSG_START) < 0 ||
        send_ok(fd, TASK_PID) < 0)
        abort();
    wait_step(sv);
    for (uint32_t slot = 6; slot <= 8; slot++)
        if (send_exited(fd, slot, (int32_t)(100 + slot), 0) < 0)
            abort();
    wait_step(sv);
    close(fd);
    return NULL;
}

static int ended;
static uint32_t ended_slots;

static void on_ended(void *arg, uint32_t slot, pid_t pid, int code)
{
    (void)arg;
    (void)pid;
    (void)code;
    ended++;
    ended_slots |= 1u << slot;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int readable_within(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
}

static void step(struct server *sv)
{
    if (write(sv->step[1], "x", 1) != 1)
        abort();
}

int main(void)
{
    char dir[] = "/tmp/dv_mn_host_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/fs.%d.sock", dir, HOST_PID);
    struct server sv;
    sv.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(sv.lfd >= 0 && pipe(sv.step) == 0);
    CHECK(bind(sv.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(sv.lfd, 1) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, serve, &sv) == 0);

    dv_error_t err;
    mn_host_t *h = mn_host_connect(dir, HOST_PID, on_ended, NULL, &err);
    CHECK(h != NULL);
    if (!h)
        return CHECK_DONE();
    /* The end makes the descriptor readable; a start's answer reads it. */
    CHECK(readable_within(mn_host_fd(h), 2000));
    uint32_t slot = 99;
    CHECK_EQ_INT(mn_host_start(h, "t", "a", 1, -1, &slot), TASK_PID);
    CHECK_EQ_INT(ended, 1);
    CHECK(ended_slots == 1u << 5);
    /* The readiness seen before is stale: nothing to read, no wait. */
    double t0 = now_s();
    CHECK_EQ_INT(mn_host_on_input(h), 0);
    CHECK(now_s() - t0 < 0.5);

    step(&sv); /* three ends */
    double until = now_s() + 5;
    while (ended < 4 && now_s() < until)
        if (readable_within(mn_host_fd(h), 100))
            CHECK_EQ_INT(mn_host_on_input(h), 0);
    CHECK_EQ_INT(ended, 4);
    CHECK(ended_slots == (1u << 5 | 1u << 6 | 1u << 7 | 1u << 8));

    step(&sv); /* the end of the connection */
    CHECK(readable_within(mn_host_fd(h), 2000));
    CHECK_EQ_INT(mn_host_on_input(h), -1);
    pthread_join(th, NULL);
    mn_host_close(&h);
    close(sv.lfd);
    unlink(sa.sun_path);
    rmdir(dir);
    return CHECK_DONE();
}
