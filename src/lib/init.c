/* dv_init / dv_finalize: the role of this process in its job. A program
 * started by `drover run` joins that job; one started directly becomes a
 * private one-node job (the original process turns into the job's agent,
 * a child continues as the main process). The main process then forks its
 * fork server; a child of the fork server comes back through dv_init to
 * run its task and exit with the task's return code. */
#define _GNU_SOURCE
#include "lib/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/error.h"
#include "lib/internal.h"
#include "lib/msg.h"
#include "lib/remote.h"

static dv__role_t role;
static int private_runtime;

dv__role_t dv__role(void)
{
    return role;
}

static void __attribute__((noreturn)) run_task(struct dv__task_req *req)
{
    dv_task_f fn = dv_task_find(req->task);
    struct dv_result result = {NULL, 0};
    int rc = fn ? fn(req->arg, req->len, &result) : 127;
    dv__remote_fence();
    free(result.data);
    free(req->arg);
    dv__warm_learn();
    /* As multiprocessing does: flush, then _exit (no atexit handlers of
     * the parent's program run again in its tasks). */
    fflush(NULL);
    _exit(rc & 0xff);
}

/* Read a remote task's argument from the descriptor its agent handed over
 * (a memfd holding the bytes). NULL with *len 0 for an empty one. */
static void *read_arg_fd(int fd, size_t *len)
{
    off_t n = lseek(fd, 0, SEEK_END);
    *len = 0;
    if (n <= 0 || (size_t)n > DV_MESSAGE_MAX)
        return NULL;
    void *b = malloc((size_t)n);
    if (b && pread(fd, b, (size_t)n, 0) == n) {
        *len = (size_t)n;
        return b;
    }
    free(b);
    return NULL;
}

/* A node's host, once its fork server runs: tell the agent (which then
 * becomes a client of that fork server), and stay until the agent closes
 * the connection or ends. */
static void __attribute__((noreturn)) serve_as_host(void)
{
    const char *dir = getenv(DV_ENV_RUNDIR);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || !dir ||
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", dir) >=
            (int)sizeof(sa.sun_path) ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        dv__msg_send(fd, DV_MSG_HOST, NULL, NULL, 0, -1) < 0)
        _exit(1);
    char b[64];
    ssize_t k;
    while ((k = read(fd, b, sizeof(b))) > 0 || (k < 0 && errno == EINTR))
        ;
    _exit(0);
}

/* A process an agent started for another node's dv_process_start: it
 * runs its task like a fork server child, after starting a fork server of
 * its own (so the task can start processes too). */
static int init_remote_task(const char *task, dv_error_t *err)
{
    struct dv__task_req req;
    memset(&req, 0, sizeof(req));
    snprintf(req.task, sizeof(req.task), "%s", task);
    const char *fds = getenv(DV_ENV_TASK_ARG_FD);
    int fd = fds ? atoi(fds) : -1;
    req.arg = fd >= 0 ? read_arg_fd(fd, &req.len) : NULL;
    if (fd >= 0)
        close(fd);
    unsetenv(DV_ENV_TASK);
    unsetenv(DV_ENV_TASK_ARG_FD);
    if (dv__node_init(err) < 0)
        return -1;
    struct dv__task_req sub;
    memset(&sub, 0, sizeof(sub));
    int r = dv__forkserver_start(&sub, err);
    if (r < 0)
        return -1;
    role = DV_ROLE_TASK;
    if (r == 0 && strcmp(req.task, DV_HOST_TASK) == 0) {
        free(req.arg);
        serve_as_host();
    }
    run_task(r == 1 ? &sub : &req);
}

int dv_init(int *argc, char ***argv, dv_error_t *err)
{
    (void)argc;
    (void)argv;
    if (role != DV_ROLE_NONE)
        return 0;
    const char *dir = getenv(DV_ENV_RUNDIR);
    const char *task = getenv(DV_ENV_TASK);
    if (task && *task && dir && *dir)
        return init_remote_task(task, err);
    if (!dir || !*dir) {
        if (dv__agent_split(err) < 0)
            return -1;
        private_runtime = 1;
    }
    if (dv__node_init(err) < 0)
        return -1;
    struct dv__task_req req;
    memset(&req, 0, sizeof(req));
    int r = dv__forkserver_start(&req, err);
    if (r < 0) {
        dv__node_reset();
        return -1;
    }
    if (r == 0) {
        role = DV_ROLE_MAIN;
        return 0;
    }
    role = DV_ROLE_TASK;
    run_task(&req);
}

int dv_finalize(void)
{
    if (role == DV_ROLE_NONE)
        return 0;
    int e = errno;
    dv__remote_fence();
    dv__process_disconnect();
    if (role == DV_ROLE_MAIN) {
        dv__forkserver_stop();
        if (private_runtime)
            dv__job_cleanup(NULL);
    }
    dv__node_reset();
    role = DV_ROLE_NONE;
    errno = e;
    return 0;
}
