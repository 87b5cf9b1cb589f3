/* The node service as a client of its node's host's fork server (see
 * mn_host.h): the same status table and messages as process.c's client,
 * plus the EXITED messages asked for at HELLO, which may come before the
 * answer to a request. */
#define _GNU_SOURCE
#include "multinode/mn_host.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/msg.h"
#include "lib/runtime.h"
#include "multinode/mn.h"

/* The longest the service waits for an answer of the fork server, or to
 * hand it a request (it answers once it forked, or at once with a spare).
 * The service beats nothing meanwhile: this stays well below MN_DEAD_S,
 * after which its node would be taken as lost. */
#define ANSWER_WAIT_S ((int)(MN_DEAD_S - 2 * MN_HEARTBEAT_S))

struct mn_host {
    int fd;
    struct dv__ps_slot *tab;
    uint32_t next;
    mn_host_ended_f ended;
    void *arg;
};

int mn_host_fd(const mn_host_t *h)
{
    return h->fd;
}

void mn_host_close(mn_host_t **hp)
{
    mn_host_t *h = *hp;
    if (!h)
        return;
    *hp = NULL;
    if (h->fd >= 0)
        close(h->fd);
    if (h->tab)
        munmap(h->tab, DV_PS_TAB_BYTES);
    free(h);
}

/* An EXITED message: the slot is free again once the service knows. */
static int on_exited(mn_host_t *h, dv__msgr_t *r)
{
    uint32_t slot = dv__msgr_u32(r);
    int32_t pid = dv__msgr_i32(r);
    int32_t code = dv__msgr_i32(r);
    if (r->bad || slot >= DV_PS_SLOTS)
        return -1;
    atomic_store(&h->tab[slot].state, DV_PS_FREE);
    h->ended(h->arg, slot, pid, code);
    return 0;
}

/* One message; EXITED ones are handled. Returns its type, or -1 when the
 * connection is broken (or the fork server speaks nonsense). */
static int recv_one(mn_host_t *h, int32_t *value, int *e)
{
    uint16_t type;
    void *body;
    size_t len;
    if (dv__msg_recv(h->fd, &type, &body, &len, NULL) < 0)
        return -1;
    dv__msgr_t r;
    dv__msgr_init(&r, body, len);
    int rc = -1;
    if (type == DV_MSG_EXITED) {
        rc = on_exited(h, &r) < 0 ? -1 : (int)type;
    } else if (type == DV_MSG_OK || type == DV_MSG_ERR) {
        *value = dv__msgr_i32(&r);
        *e = type == DV_MSG_ERR ? (*value > 0 ? *value : EPROTO) : 0;
        rc = r.bad ? -1 : (int)type;
    }
    free(body);
    return rc;
}

/* The answer to a request: 0 with its value, or -1 with errno (EPIPE
 * when the connection is broken). */
static int answer(mn_host_t *h, int32_t *value)
{
    int e = 0, t;
    while ((t = recv_one(h, value, &e)) == DV_MSG_EXITED)
        ;
    if (t < 0) {
        errno = EPIPE;
        return -1;
    }
    if (t == DV_MSG_ERR) {
        errno = e;
        return -1;
    }
    return 0;
}

mn_host_t *mn_host_connect(const char *rundir, pid_t pid, mn_host_ended_f ended,
                           void *arg, dv_error_t *err)
{
    mn_host_t *h = calloc(1, sizeof(*h));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int mfd = -1;
    if (!h) {
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    *h = (struct mn_host){-1, NULL, 0, ended, arg};
    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/fs.%ld.sock", rundir,
                 (long)pid) >= (int)sizeof(sa.sun_path)) {
        dv__errprintf(err, ENAMETOOLONG, "runtime dir path too long");
        goto fail;
    }
    mfd = memfd_create("drover-host-ps", MFD_CLOEXEC);
    if (mfd < 0 || ftruncate(mfd, DV_PS_TAB_BYTES) < 0 ||
        (h->tab = mmap(NULL, DV_PS_TAB_BYTES, PROT_READ | PROT_WRITE,
                       MAP_SHARED, mfd, 0)) == MAP_FAILED) {
        h->tab = NULL;
        dv__errsys(err, "the host's status table");
        goto fail;
    }
    struct timeval tv = {ANSWER_WAIT_S, 0};
    h->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_i32(&w, 1); /* EXITED messages, please */
    int32_t v;
    int ok = h->fd >= 0 &&
             setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
             setsockopt(h->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
             connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
             dv__msg_send(h->fd, DV_MSG_HELLO, &w, NULL, 0, mfd) == 0 &&
             answer(h, &v) == 0;
    dv__msgw_free(&w);
    if (!ok) {
        dv__errsys(err, "the host's fork server %s", sa.sun_path);
        goto fail;
    }
    close(mfd);
    return h;
fail:
    if (mfd >= 0)
        close(mfd);
    mn_host_close(&h);
    return NULL;
}

pid_t mn_host_start(mn_host_t *h, const char *task, const void *arg, size_t len,
                    int gpu, uint32_t *slot)
{
    uint32_t i;
    if (dv__ps_alloc(h->tab, &h->next, &i) < 0)
        return -1;
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_u32(&w, i);
    dv__msgw_i32(&w, gpu);
    dv__msgw_str(&w, task);
    int32_t pid = 0;
    int ok = dv__msg_send(h->fd, DV_MSG_START, &w, arg, len, -1) == 0;
    dv__msgw_free(&w);
    if (!ok)
        errno = EPIPE;
    else if ((ok = answer(h, &pid) == 0) && pid <= 0)
        ok = 0, errno = EPROTO;
    if (!ok) {
        int e = errno;
        atomic_store(&h->tab[i].state, DV_PS_FREE);
        errno = e;
        return -1;
    }
    *slot = i;
    return pid;
}

int mn_host_signal(mn_host_t *h, uint32_t slot, int sig)
{
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_u32(&w, slot);
    dv__msgw_i32(&w, sig);
    int32_t v;
    int rc = dv__msg_send(h->fd, DV_MSG_SIGNAL, &w, NULL, 0, -1);
    dv__msgw_free(&w);
    if (rc < 0) {
        errno = EPIPE;
        return -1;
    }
    return answer(h, &v);
}

/* What the poll saw may be gone: an answer read since (the service's loop
 * starts and signals for other nodes before it looks at this descriptor)
 * takes the EXITED messages before it. So only what is there is read, and
 * all of it; a read with nothing there would wait ANSWER_WAIT_S and take
 * the host as gone. */
int mn_host_on_input(mn_host_t *h)
{
    for (int n = 0; n < 256; n++) { /* the rest at the next poll */
        struct pollfd p = {h->fd, POLLIN, 0};
        int k = poll(&p, 1, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            return 0;
        int32_t v;
        int e;
        /* Only EXITED messages come unasked. */
        if (recv_one(h, &v, &e) != DV_MSG_EXITED)
            return -1;
    }
    return 0;
}
