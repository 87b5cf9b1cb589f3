/* Queues and events of another node: a process that attaches a handle
 * whose object lives elsewhere gets a relay object. Each operation is one
 * request to the node's agent over rundir/agent.sock (its own connection,
 * so that a blocking get does not hold up the process's other traffic);
 * the agent passes it to the object's home agent, which runs it on the
 * object's shared memory and answers. A put returns only once the home
 * node stored the message, so maxsize holds end to end. */
#define _GNU_SOURCE
#include "lib/remote.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"
#include "lib/msg.h"
#include "lib/remote_wire.h"
#include "lib/runtime.h"
#include "drover/drover.h"

/* Weak: white-box tests compile this file without the node table. */
#pragma weak dv__node_data_port

struct dv__remote {
    pthread_mutex_t mu;
    pid_t owner;
    int fd;
    int node;
    int direct; /* fd is a data-plane connection to the home agent */
    dv_handle_t h;
};

/* ---- the data plane: straight to the home node's agent ---- */

static int io_full(int fd, void *p, size_t n, int wr)
{
    char *c = p;
    while (n) {
        ssize_t k = wr ? send(fd, c, n, MSG_NOSIGNAL) : read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Connect to the home agent's data port and present the job's token. */
static int direct_connect(dv__remote_t *r, int port, dv_error_t *err)
{
    dv_node_info_t ni;
    char path[4096];
    uint8_t tok[DV_DATA_TOKEN];
    const char *dir = getenv(DV_ENV_RUNDIR);
    if (!dir || dv_node_get(r->node, &ni, NULL) < 0)
        return dv__errprintf(err, ENOTCONN, "no node %d", r->node);
    snprintf(path, sizeof(path), "%s/token", dir);
    int tfd = open(path, O_RDONLY | O_CLOEXEC);
    int ok = tfd >= 0 && read(tfd, tok, sizeof(tok)) == (ssize_t)sizeof(tok);
    if (tfd >= 0)
        close(tfd);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    if (!ok || inet_pton(AF_INET, ni.address, &sa.sin_addr) != 1)
        return dv__errprintf(err, ENOTCONN, "node %d: no data plane", r->node);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        io_full(fd, tok, sizeof(tok), 1) < 0) {
        if (fd >= 0)
            close(fd);
        return dv__errprintf(err, ENOTCONN, "node %d (%s): %s", r->node,
                             ni.hostname, strerror(errno));
    }
    r->fd = fd;
    r->direct = 1;
    return 0;
}

static int direct_op(dv__remote_t *r, int op, double timeout_s, const void *in,
                     size_t in_len, int32_t *value, void **out, size_t *out_len,
                     const char *ctx, dv_error_t *err)
{
    struct dv__data_req q = {
        DV_DATA_MAGIC, (uint32_t)op, timeout_s, in_len, {0}};
    memcpy(q.handle, r->h.bytes, sizeof(q.handle));
    struct dv__data_rep p;
    if (io_full(r->fd, &q, sizeof(q), 1) < 0 ||
        (in_len && io_full(r->fd, (void *)in, in_len, 1) < 0) ||
        io_full(r->fd, &p, sizeof(p), 0) < 0 || p.magic != DV_DATA_MAGIC ||
        p.textlen > 4096 || p.len > DV_MESSAGE_MAX) {
        close(r->fd);
        r->fd = -1;
        return dv__errprintf(err, ENOTCONN, "%s: lost node %d", ctx, r->node);
    }
    char why[4097] = "";
    void *d = p.len ? malloc(p.len) : NULL;
    if ((p.textlen && io_full(r->fd, why, p.textlen, 0) < 0) ||
        (p.len && (!d || io_full(r->fd, d, p.len, 0) < 0))) {
        free(d);
        close(r->fd);
        r->fd = -1;
        return dv__errprintf(err, ENOTCONN, "%s: lost node %d", ctx, r->node);
    }
    why[p.textlen] = 0;
    if (p.rc < 0) {
        free(d);
        return dv__errprintf(err, p.err > 0 ? p.err : EIO, "%s",
                             *why ? why : strerror(p.err));
    }
    if (value)
        *value = p.value;
    if (out) {
        *out = d;
        *out_len = p.len;
    } else {
        free(d);
    }
    return 0;
}

dv__remote_t *dv__remote_open(const dv_handle_t *h, int node, dv_error_t *err)
{
    dv__remote_t *r = calloc(1, sizeof(*r));
    if (!r) {
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->fd = -1;
    r->node = node;
    r->h = *h;
    return r;
}

void dv__remote_close(dv__remote_t **rp)
{
    if (!rp || !*rp)
        return;
    int e = errno;
    if ((*rp)->fd >= 0)
        close((*rp)->fd);
    pthread_mutex_destroy(&(*rp)->mu);
    free(*rp);
    *rp = NULL;
    errno = e;
}

int dv__remote_node(const dv__remote_t *r)
{
    return r->node;
}

static int connect_locked(dv__remote_t *r, dv_error_t *err)
{
    if (r->fd >= 0 && r->owner == getpid())
        return 0;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->direct = 0;
    int port = dv__node_data_port ? dv__node_data_port(r->node) : 0;
    if (port > 0) {
        if (direct_connect(r, port, err) < 0)
            return -1;
        r->owner = getpid();
        return 0;
    }
    const char *dir = getenv(DV_ENV_RUNDIR);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!dir || snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock",
                         dir) >= (int)sizeof(sa.sun_path))
        return dv__errprintf(err, ENOTCONN, "no agent on this node");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return dv__errprintf(err, ENOTCONN, "the node's agent is gone");
    }
    r->fd = fd;
    r->owner = getpid();
    return 0;
}

/* Read the agent's answer: OK (i32 value, tail data) or ERR. */
static int read_reply(dv__remote_t *r, int32_t *value, void **data, size_t *len,
                      const char *ctx, dv_error_t *err)
{
    uint16_t type;
    void *body;
    size_t n;
    if (dv__msg_recv(r->fd, &type, &body, &n, NULL) < 0) {
        close(r->fd);
        r->fd = -1;
        return dv__errprintf(err, ENOTCONN, "%s: lost the node's agent", ctx);
    }
    dv__msgr_t rd;
    dv__msgr_init(&rd, body, n);
    int32_t v = dv__msgr_i32(&rd);
    char why[160] = "";
    const void *tail = NULL;
    size_t tl = 0;
    if (type == DV_MSG_ERR)
        dv__msgr_str(&rd, why, sizeof(why));
    else
        tl = dv__msgr_tail(&rd, &tail);
    int bad = rd.bad || (type != DV_MSG_OK && type != DV_MSG_ERR);
    if (!bad && type == DV_MSG_OK && data) {
        *data = tl ? malloc(tl) : NULL;
        if (tl && !*data) {
            free(body);
            return dv__errprintf(err, ENOMEM, "%s: out of memory", ctx);
        }
        if (tl)
            memcpy(*data, tail, tl);
        *len = tl;
    }
    free(body);
    if (bad)
        return dv__errprintf(err, EPROTO, "%s: bad reply", ctx);
    if (type == DV_MSG_ERR)
        return dv__errprintf(err, v > 0 ? v : EIO, "%s", why);
    if (value)
        *value = v;
    return 0;
}

int dv__remote_op(dv__remote_t *r, int op, double timeout_s, const void *in,
                  size_t in_len, int32_t *value, void **out, size_t *out_len,
                  dv_error_t *err)
{
    static const char *names[] = {
        "",          "queue put",   "queue get",    "queue size", "queue close",
        "event set", "event clear", "event is_set", "event wait"};
    const char *ctx = op > 0 && op <= DV_ROP_EVENT_WAIT ? names[op] : "remote";
    pthread_mutex_lock(&r->mu);
    int rc = connect_locked(r, err);
    if (rc == 0 && r->direct) {
        rc = direct_op(r, op, timeout_s, in, in_len, value, out, out_len, ctx,
                       err);
    } else if (rc == 0) {
        dv__msgw_t w;
        dv__msgw_init(&w);
        dv__msgw_i32(&w, r->node);
        dv__msgw_u32(&w, (uint32_t)op);
        uint64_t t;
        memcpy(&t, &timeout_s, sizeof(t));
        dv__msgw_u64(&w, t);
        dv__msgw_bytes(&w, r->h.bytes, sizeof(r->h.bytes));
        rc = dv__msg_send(r->fd, DV_MSG_OBJOP, &w, in, in_len, -1);
        dv__msgw_free(&w);
        if (rc < 0)
            rc = dv__errprintf(err, ENOTCONN, "%s: lost the node's agent", ctx);
        else
            rc = read_reply(r, value, out, out_len, ctx, err);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int dv__remote_home(const dv_handle_t *h)
{
    int e = errno;
    int node = dv__shm_handle_node(h);
    int self = dv_node_self(), n = dv_node_count();
    errno = e;
    if (node < 0 || self < 0 || n <= 1 || node == self || node >= n)
        return -1;
    return node;
}

/* ---- the home node's side ---- */

struct served {
    dv_handle_t h;
    dv_queue_t *q;
    dv_event_t *e;
};

struct dv__serve_cache {
    pthread_mutex_t mu;
    struct served *v;
    size_t n, cap;
};

struct dv__serve_cache *dv__remote_serve_new(void)
{
    struct dv__serve_cache *c = calloc(1, sizeof(*c));
    if (c)
        pthread_mutex_init(&c->mu, NULL);
    return c;
}

/* The object of h, attached once. */
static struct served *served_get(struct dv__serve_cache **cp,
                                 const dv_handle_t *h, int queue,
                                 dv_error_t *err)
{
    if (!*cp && !(*cp = dv__remote_serve_new())) {
        dv__errprintf(err, ENOMEM, "remote: out of memory");
        return NULL;
    }
    struct dv__serve_cache *c = *cp;
    struct served *s = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n && !s; i++)
        if (!memcmp(c->v[i].h.bytes, h->bytes, sizeof(h->bytes)))
            s = &c->v[i];
    if (!s && c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        struct served *nv = realloc(c->v, cap * sizeof(*nv));
        if (nv) {
            c->v = nv;
            c->cap = cap;
        }
    }
    if (!s && c->n < c->cap) {
        struct served t = {*h, NULL, NULL};
        if (queue)
            t.q = dv_queue_attach(h, err);
        else
            t.e = dv_event_attach(h, err);
        if (t.q || t.e) {
            c->v[c->n] = t;
            s = &c->v[c->n++];
        }
    }
    struct served *r = s && (queue ? s->q != NULL : s->e != NULL) ? s : NULL;
    pthread_mutex_unlock(&c->mu);
    if (s && !r)
        dv__errprintf(err, EINVAL, "handle: of another kind");
    return r;
}

int dv__remote_serve(struct dv__serve_cache **cache, const dv_handle_t *h,
                     int op, double timeout_s, const void *in, size_t in_len,
                     int32_t *value, void **out, size_t *out_len,
                     dv_error_t *err)
{
    int queue = op >= DV_ROP_QUEUE_PUT && op <= DV_ROP_QUEUE_CLOSE;
    if (op < DV_ROP_QUEUE_PUT || op > DV_ROP_EVENT_WAIT)
        return dv__errprintf(err, EINVAL, "remote: unknown operation %d", op);
    struct served *s = served_get(cache, h, queue, err);
    if (!s)
        return -1;
    *value = 0;
    long n;
    switch (op) {
    case DV_ROP_QUEUE_PUT:
        return dv_queue_put(s->q, in, in_len, timeout_s, err);
    case DV_ROP_QUEUE_GET:
        return dv_queue_get(s->q, out, out_len, timeout_s, err);
    case DV_ROP_QUEUE_SIZE:
        n = dv_queue_size(s->q);
        *value = (int32_t)(n > INT32_MAX ? INT32_MAX : n);
        return n < 0 ? -1 : 0;
    case DV_ROP_QUEUE_CLOSE:
        return dv_queue_close(s->q);
    case DV_ROP_EVENT_SET:
        return dv_event_set(s->e);
    case DV_ROP_EVENT_CLEAR:
        return dv_event_clear(s->e);
    case DV_ROP_EVENT_IS_SET:
        *value = dv_event_is_set(s->e);
        return 0;
    default:
        return dv_event_wait(s->e, timeout_s, err);
    }
}

void dv__remote_serve_free(struct dv__serve_cache **cp)
{
    if (!cp || !*cp)
        return;
    struct dv__serve_cache *c = *cp;
    for (size_t i = 0; i < c->n; i++) {
        dv_queue_destroy(&c->v[i].q);
        dv_event_destroy(&c->v[i].e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->v);
    free(c);
    *cp = NULL;
}
