/* The node service of the multi-node runtime (see mn.h): serves the
 * processes of its node on rundir/agent.sock (a start or a signal for a
 * process on another node; the caller's status table is handed over at
 * hello so that the exit code lands where dv_process_join waits), starts
 * processes that other nodes ask for (a fork by the node's host, mn_host.h;
 * until it is up, an exec of the job's program with DROVER_TASK), and
 * reports their end to the node that asked. */
#define _GNU_SOURCE
#include "multinode/mn_svc.h"
#include "multinode/mn_out.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/msg.h"
#include "lib/remote.h"

double mn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int mn_msg_begin(dv_wire_buf_t *b, int type, int src, int dst)
{
    memset(b, 0, sizeof(*b));
    if (dv__wire_begin(b, (uint16_t)type, 0, 128, NULL) < 0)
        return -1;
    dv__wire_put_u64(b, MN_SRC, (uint64_t)src);
    dv__wire_put_u64(b, MN_DST, (uint64_t)dst);
    return 0;
}

int64_t mn_get_i64(const dv_wire_view_t *v, int tag, int64_t def)
{
    uint64_t x;
    if (dv__wire_get_u64(v, (uint16_t)tag, &x, NULL) < 0)
        return def;
    return (int64_t)x;
}

int svc_send(mn_svc_t *s, dv_wire_buf_t *b)
{
    if (dv__wire_end(b, NULL) < 0) {
        dv__wire_buf_release(b);
        return -1;
    }
    return s->send(s->send_arg, -1, b); /* dst: MN_DST */
}

/* rundir/lost, n bytes of 0, before any process of the node looks. */
static int lost_file_create(mn_svc_t *s, const char *rundir, dv_error_t *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", rundir, DV_LOST_FILE);
    if (!(s->lost = calloc((size_t)s->n, 1)))
        return dv__errprintf(err, ENOMEM, "out of memory");
    s->lostfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->lostfd < 0 || ftruncate(s->lostfd, (off_t)s->n) < 0)
        return dv__errsys(err, "%s", path);
    return 0;
}

mn_svc_t *mn_svc_create(int self, int n, const char *rundir, const char *prog,
                        char *const *argv, int out_fds, mn_send_f send,
                        void *send_arg, dv_error_t *err)
{
    mn_svc_t *s = calloc(1, sizeof(*s));
    if (!s) {
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    s->self = self;
    s->n = n;
    s->send = send;
    s->send_arg = send_arg;
    s->next_rid = 1;
    s->credit = mn_out_credit(n);
    s->lfd = -1;
    s->lostfd = -1;
    s->done[0] = s->done[1] = -1;
    if (pipe2(s->done, O_CLOEXEC) < 0) {
        dv__errsys(err, "pipe");
        goto fail;
    }
    for (int i = 0; i < 3; i++)
        s->outr[i] = s->outw[i] = -1;
    snprintf(s->prog, sizeof(s->prog), "%s", prog);
    snprintf(s->rundir, sizeof(s->rundir), "%s", rundir);
    int na = 0;
    while (argv[na])
        na++;
    s->argv = calloc((size_t)na + 1, sizeof(char *));
    for (int i = 0; s->argv && i < na; i++)
        s->argv[i] = strdup(argv[i]);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", rundir) >=
        (int)sizeof(sa.sun_path)) {
        dv__errprintf(err, ENAMETOOLONG, "runtime dir path too long");
        goto fail;
    }
    snprintf(s->path, sizeof(s->path), "%s", sa.sun_path);
    if (lost_file_create(s, rundir, err) < 0)
        goto fail;
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(s->lfd, SOMAXCONN) < 0) {
        dv__errsys(err, "listen on %s", sa.sun_path);
        goto fail;
    }
    for (int k = 1; out_fds && k <= 2; k++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
            dv__errsys(err, "pipe");
            goto fail;
        }
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        s->outr[k] = p[0];
        s->outw[k] = p[1];
    }
    return s;
fail:
    mn_svc_destroy(&s);
    return NULL;
}

static void objops_drain(mn_svc_t *s);

void mn_svc_destroy(mn_svc_t **sp)
{
    mn_svc_t *s = *sp;
    if (!s)
        return;
    *sp = NULL;
    if (s->lfd >= 0) {
        close(s->lfd);
        unlink(s->path);
    }
    objops_drain(s);
    svc_tasks_free(s);
    if (s->lostfd >= 0)
        close(s->lostfd);
    free(s->lost);
    for (int i = 0; i < 2; i++)
        if (s->done[i] >= 0)
            close(s->done[i]);
    if (!s->inflight)
        dv__remote_serve_free(&s->cache);
    for (int i = 0; i < 3; i++) {
        if (s->outr[i] >= 0)
            close(s->outr[i]);
        if (s->outw[i] >= 0)
            close(s->outw[i]);
    }
    for (int i = 0; i < s->ncl; i++) {
        if (s->cl[i].fd >= 0)
            close(s->cl[i].fd);
        if (s->cl[i].tab)
            munmap(s->cl[i].tab, DV_PS_TAB_BYTES);
    }
    for (int i = 0; s->argv && s->argv[i]; i++)
        free(s->argv[i]);
    free(s->argv);
    free(s->origin_cwd);
    free(s->origin_env);
    free(s->cl);
    free(s->rq);
    free(s->tk);
    free(s);
}

/* ---- replies to the node's processes ---- */

static void reply(mn_svc_t *s, int c, int ok, int32_t v, const char *why)
{
    if (c < 0 || s->cl[c].fd < 0)
        return;
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_i32(&w, v);
    if (!ok)
        dv__msgw_str(&w, why ? why : "failed");
    dv__msg_send(s->cl[c].fd, ok ? DV_MSG_OK : DV_MSG_ERR, &w, NULL, 0, -1);
    dv__msgw_free(&w);
}

static void slot_finish(struct dv__ps_slot *sl, int code)
{
    sl->code = code;
    uint32_t old = atomic_exchange(&sl->state, DV_PS_DONE);
    if (old == DV_PS_ABANDONED)
        atomic_store(&sl->state, DV_PS_FREE);
    else if (old & DV_PS_WAITER)
        syscall(SYS_futex, &sl->state, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static struct req *find_req(mn_svc_t *s, uint64_t rid)
{
    for (int i = 0; i < s->nrq; i++)
        if (s->rq[i].rid == rid)
            return &s->rq[i];
    return NULL;
}

static void drop_req(mn_svc_t *s, struct req *r)
{
    *r = s->rq[--s->nrq];
}

/* The process of request r ended with code. */
static void req_done(mn_svc_t *s, struct req *r, int code)
{
    if (r->objop) {
        reply(s, r->client, 0, EHOSTDOWN, "the object's node is gone");
    } else if (r->client >= 0 && s->cl[r->client].tab) {
        struct dv__ps_slot *sl = &s->cl[r->client].tab[r->slot];
        if (!r->started) {
            atomic_store(&sl->state, DV_PS_FREE);
            reply(s, r->client, 0, EHOSTDOWN, "the node is gone");
        } else {
            slot_finish(sl, code);
        }
    }
    drop_req(s, r);
}

/* ---- requests from the node's processes ---- */

static int client_rstart(mn_svc_t *s, int c, dv__msgr_t *r)
{
    uint32_t slot = dv__msgr_u32(r);
    int32_t node = dv__msgr_i32(r);
    int32_t gpu = dv__msgr_i32(r);
    char task[128];
    dv__msgr_str(r, task, sizeof(task));
    const void *arg;
    size_t len = dv__msgr_tail(r, &arg);
    struct dv__ps_slot *tab = s->cl[c].tab;
    if (r->bad || !tab || slot >= DV_PS_SLOTS || node < 0 || node >= s->n ||
        node == s->self || atomic_load(&tab[slot].state) != DV_PS_STARTING) {
        reply(s, c, 0, EPROTO, "malformed remote start");
        return 0;
    }
    if (s->lost[node]) {
        atomic_store(&tab[slot].state, DV_PS_FREE);
        reply(s, c, 0, EHOSTDOWN, "the node is lost");
        return 0;
    }
    if (s->nrq == s->caprq) {
        int cap = s->caprq ? 2 * s->caprq : 64;
        struct req *n = realloc(s->rq, (size_t)cap * sizeof(*n));
        if (!n) {
            reply(s, c, 0, ENOMEM, "out of memory");
            return 0;
        }
        s->rq = n;
        s->caprq = cap;
    }
    uint64_t rid = s->next_rid++;
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, DV_WIRE_SPAWN, s->self, node) < 0) {
        reply(s, c, 0, ENOMEM, "out of memory");
        return 0;
    }
    dv__wire_put_u64(&b, MN_RID, rid);
    dv__wire_put_str(&b, MN_TASK, task);
    dv__wire_put_u64(&b, MN_GPU, (uint64_t)(int64_t)gpu);
    dv__wire_put(&b, MN_ARG, arg, len);
    if (svc_send(s, &b) < 0) {
        reply(s, c, 0, EHOSTUNREACH, "cannot reach the node");
        return 0;
    }
    s->rq[s->nrq++] = (struct req){rid, c, slot, node, 0, 0};
    return 0;
}

static int grow_req(mn_svc_t *s)
{
    if (s->nrq < s->caprq)
        return 0;
    int cap = s->caprq ? 2 * s->caprq : 64;
    struct req *n = realloc(s->rq, (size_t)cap * sizeof(*n));
    if (!n)
        return -1;
    s->rq = n;
    s->caprq = cap;
    return 0;
}

/* A queue/event operation of a process of this node on another node's
 * object: passed on to the object's node. */
static void client_objop(mn_svc_t *s, int c, dv__msgr_t *r)
{
    int32_t node = dv__msgr_i32(r);
    uint32_t op = dv__msgr_u32(r);
    uint64_t tbits = dv__msgr_u64(r);
    const void *h, *in;
    size_t hl = dv__msgr_bytes(r, &h);
    size_t len = dv__msgr_tail(r, &in);
    if (r->bad || hl != sizeof(dv_handle_t) || node < 0 || node >= s->n ||
        node == s->self) {
        reply(s, c, 0, EPROTO, "malformed object operation");
        return;
    }
    if (s->lost[node]) {
        reply(s, c, 0, EHOSTDOWN, "the object's node is lost");
        return;
    }
    dv_wire_buf_t b;
    if (grow_req(s) < 0 ||
        mn_msg_begin(&b, DV_WIRE_OBJ_OP, s->self, node) < 0) {
        reply(s, c, 0, ENOMEM, "out of memory");
        return;
    }
    uint64_t rid = s->next_rid++;
    dv__wire_put_u64(&b, MN_RID, rid);
    dv__wire_put_u64(&b, MN_OP, op);
    dv__wire_put_u64(&b, MN_TIMEOUT, tbits);
    dv__wire_put(&b, MN_HANDLE, h, hl);
    dv__wire_put(&b, MN_DATA, in, len);
    if (svc_send(s, &b) < 0) {
        reply(s, c, 0, EHOSTUNREACH, "cannot reach the object's node");
        return;
    }
    s->rq[s->nrq++] = (struct req){rid, c, 0, node, 1, 1};
}

static int client_rsignal(mn_svc_t *s, int c, dv__msgr_t *r)
{
    uint32_t slot = dv__msgr_u32(r);
    int32_t sig = dv__msgr_i32(r);
    struct req *q = NULL;
    for (int i = 0; i < s->nrq && !q; i++)
        if (s->rq[i].client == c && s->rq[i].slot == slot && !s->rq[i].objop)
            q = &s->rq[i];
    if (r->bad || (sig != SIGTERM && sig != SIGKILL)) {
        reply(s, c, 0, EINVAL, "malformed signal request");
        return 0;
    }
    if (!q || !q->started) {
        reply(s, c, 0, ESRCH, "the process has ended");
        return 0;
    }
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, DV_WIRE_KILL, s->self, q->node) == 0) {
        dv__wire_put_u64(&b, MN_RID, q->rid);
        dv__wire_put_u64(&b, MN_SIG, (uint64_t)sig);
        svc_send(s, &b);
    }
    reply(s, c, 1, 0, NULL);
    return 0;
}

static void client_drop(mn_svc_t *s, int c)
{
    close(s->cl[c].fd);
    s->cl[c].fd = -1;
    for (int i = 0; i < s->nrq; i++)
        if (s->rq[i].client == c)
            s->rq[i].client = -1;
    if (s->cl[c].tab)
        munmap(s->cl[c].tab, DV_PS_TAB_BYTES);
    s->cl[c].tab = NULL;
}

static void client_message(mn_svc_t *s, int c)
{
    uint16_t type;
    void *body;
    size_t len;
    int fd = -1;
    if (dv__msg_recv(s->cl[c].fd, &type, &body, &len, &fd) < 0) {
        client_drop(s, c);
        return;
    }
    dv__msgr_t r;
    dv__msgr_init(&r, body, len);
    if (type == DV_MSG_HELLO && fd >= 0 && !s->cl[c].tab) {
        void *m = mmap(NULL, DV_PS_TAB_BYTES, PROT_READ | PROT_WRITE,
                       MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            reply(s, c, 0, errno, "cannot map the status table");
        else
            s->cl[c].tab = m;
        if (m != MAP_FAILED)
            reply(s, c, 1, 0, NULL);
    } else if (type == DV_MSG_RSTART) {
        client_rstart(s, c, &r);
    } else if (type == DV_MSG_RSIGNAL) {
        client_rsignal(s, c, &r);
    } else if (type == DV_MSG_OBJOP) {
        client_objop(s, c, &r);
    } else if (type == DV_MSG_HOST) {
        svc_host_ready(s, c);
    } else {
        client_drop(s, c);
    }
    if (fd >= 0)
        close(fd);
    free(body);
}

static void client_accept(mn_svc_t *s)
{
    int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    int i = 0;
    while (i < s->ncl && s->cl[i].fd >= 0)
        i++;
    if (i == s->ncl) {
        struct client *n = realloc(s->cl, (size_t)(s->ncl + 1) * sizeof(*n));
        if (!n) {
            close(fd);
            return;
        }
        s->cl = n;
        s->ncl++;
    }
    s->cl[i] = (struct client){fd, NULL};
}

/* ---- output of the processes started here ---- */

static void forward_output(mn_svc_t *s, int stream)
{
    char buf[65536];
    ssize_t k;
    while (s->unacked < s->credit) {
        size_t room = s->credit - s->unacked;
        k = read(s->outr[stream], buf, room < sizeof(buf) ? room : sizeof(buf));
        if (k <= 0)
            return;
        s->unacked += (size_t)k;
        dv_wire_buf_t b;
        if (mn_msg_begin(&b, DV_WIRE_OUTPUT, s->self, 0) < 0)
            return;
        dv__wire_put_u64(&b, MN_STREAM, (uint64_t)stream);
        dv__wire_put(&b, MN_DATA, buf, (size_t)k);
        svc_send(s, &b);
    }
}

void mn_svc_drain_output(mn_svc_t *s)
{
    s->credit = SIZE_MAX; /* the job is over: what is left goes at once */
    s->unacked = 0;
    for (int k = 1; k <= 2; k++)
        if (s->outr[k] >= 0)
            forward_output(s, k);
}

/* ---- operations on this node's queues and events ---- */

struct objop {
    mn_svc_t *s;
    int src;
    uint64_t rid;
    int op;
    double timeout;
    dv_handle_t h;
    void *in;
    size_t in_len;
    int rc, e;
    int32_t value;
    void *out;
    size_t out_len;
    dv_error_t err;
};

static void objop_run(struct objop *o, double timeout)
{
    o->err.text[0] = 0;
    o->rc =
        dv__remote_serve(&o->s->cache, &o->h, o->op, timeout, o->in, o->in_len,
                         &o->value, &o->out, &o->out_len, &o->err);
    o->e = o->rc < 0 ? errno : 0;
}

static void objop_reply(mn_svc_t *s, struct objop *o)
{
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, DV_WIRE_OBJ_REPLY, s->self, o->src) == 0) {
        dv__wire_put_u64(&b, MN_RID, o->rid);
        dv__wire_put_u64(&b, MN_VALUE, (uint64_t)(int64_t)o->value);
        if (o->rc < 0) {
            dv__wire_put_u64(&b, MN_ERRNO, (uint64_t)(o->e ? o->e : EIO));
            dv__wire_put_str(&b, MN_TEXT,
                             o->err.text[0] ? o->err.text : strerror(o->e));
        } else if (o->out_len) {
            dv__wire_put(&b, MN_DATA, o->out, o->out_len);
        }
        svc_send(s, &b);
    }
    free(o->in);
    free(o->out);
    free(o);
}

/* The service ends: let blocked operations notice (they poll every 0.5 s)
 * and free them. */
static void objops_drain(mn_svc_t *s)
{
    atomic_store(&s->stopping, 1);
    double end = mn_now() + 2;
    while (s->inflight > 0 && s->done[0] >= 0 && mn_now() < end) {
        struct pollfd p = {s->done[0], POLLIN, 0};
        struct objop *o;
        if (poll(&p, 1, 100) > 0 &&
            read(s->done[0], &o, sizeof(o)) == sizeof(o)) {
            s->inflight--;
            free(o->in);
            free(o->out);
            free(o);
        }
    }
}

/* A blocking operation, in slices so that it ends with the service. */
static void *objop_thread(void *arg)
{
    struct objop *o = arg;
    double left = o->timeout;
    for (;;) {
        double slice = left < 0 || left > 0.5 ? 0.5 : left;
        objop_run(o, slice);
        if (o->rc == 0 || (o->e != ETIMEDOUT && o->e != EAGAIN))
            break;
        if (left >= 0 && (left -= slice) <= 0)
            break;
        if (atomic_load(&o->s->stopping))
            break;
    }
    if (write(o->s->done[1], &o, sizeof(o)) != sizeof(o))
        return NULL;
    return NULL;
}

static void objops_done(mn_svc_t *s)
{
    struct objop *o;
    if (read(s->done[0], &o, sizeof(o)) == sizeof(o)) {
        s->inflight--;
        objop_reply(s, o);
    }
}

/* Try at once; an operation that would block goes to a thread of its own
 * (the node's loop never waits on a queue). */
static void on_objop(mn_svc_t *s, const dv_wire_view_t *v, int src)
{
    const dv_wire_field_t *h = dv__wire_find(v, MN_HANDLE);
    const dv_wire_field_t *d = dv__wire_find(v, MN_DATA);
    struct objop *o = calloc(1, sizeof(*o));
    if (!o)
        return;
    uint64_t tb = (uint64_t)mn_get_i64(v, MN_TIMEOUT, 0);
    *o = (struct objop){.s = s,
                        .src = src,
                        .rid = (uint64_t)mn_get_i64(v, MN_RID, 0),
                        .op = (int)mn_get_i64(v, MN_OP, 0)};
    memcpy(&o->timeout, &tb, sizeof(tb));
    if (!h || h->len != sizeof(o->h)) {
        o->rc = -1;
        o->e = EPROTO;
        objop_reply(s, o);
        return;
    }
    memcpy(&o->h, h->data, sizeof(o->h));
    if (d && d->len && (o->in = malloc(d->len))) {
        memcpy(o->in, d->data, d->len);
        o->in_len = d->len;
    }
    objop_run(o, 0);
    int blocking = o->op == DV_ROP_QUEUE_PUT || o->op == DV_ROP_QUEUE_GET ||
                   o->op == DV_ROP_EVENT_WAIT || o->op == DV_ROP_SEM_ACQUIRE ||
                   o->op == DV_ROP_BARRIER_ARRIVE ||
                   o->op == DV_ROP_BARRIER_AWAIT ||
                   o->op == DV_ROP_QUEUE_JOIN || o->op == DV_ROP_QUEUE_WAIT;
    pthread_t th;
    pthread_attr_t at;
    if (o->rc < 0 && (o->e == EAGAIN || o->e == ETIMEDOUT) && blocking &&
        o->timeout != 0 && pthread_attr_init(&at) == 0) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&th, &at, objop_thread, o) == 0;
        pthread_attr_destroy(&at);
        if (ok) {
            s->inflight++;
            return;
        }
    }
    objop_reply(s, o);
}

int mn_svc_poll_items(mn_svc_t *s, zmq_pollitem_t *it, int cap)
{
    int n = 0;
    if (n < cap)
        it[n++] = (zmq_pollitem_t){NULL, s->lfd, ZMQ_POLLIN, 0};
    if (n < cap)
        it[n++] = (zmq_pollitem_t){NULL, s->done[0], ZMQ_POLLIN, 0};
    for (int k = 1; k <= 2; k++)
        if (s->outr[k] >= 0 && n < cap && s->unacked < s->credit)
            it[n++] = (zmq_pollitem_t){NULL, s->outr[k], ZMQ_POLLIN, 0};
    if (s->host && n < cap)
        it[n++] = (zmq_pollitem_t){NULL, mn_host_fd(s->host), ZMQ_POLLIN, 0};
    for (int i = 0; i < s->ncl && n < cap; i++)
        if (s->cl[i].fd >= 0)
            it[n++] = (zmq_pollitem_t){NULL, s->cl[i].fd, ZMQ_POLLIN, 0};
    return n;
}

void mn_svc_on_poll(mn_svc_t *s, zmq_pollitem_t *it, int n)
{
    svc_host_check_wait(s);
    for (int j = 0; j < n; j++) {
        if (!it[j].revents)
            continue;
        int fd = it[j].fd;
        if (fd == s->lfd) {
            client_accept(s);
            continue;
        }
        if (fd == s->done[0]) {
            objops_done(s);
            continue;
        }
        if (s->host && fd == mn_host_fd(s->host)) {
            if (mn_host_on_input(s->host) < 0)
                svc_host_gone(s, "closed its connection");
            continue;
        }
        if (fd == s->outr[1] || fd == s->outr[2]) {
            forward_output(s, fd == s->outr[1] ? 1 : 2);
            continue;
        }
        for (int c = 0; c < s->ncl; c++)
            if (s->cl[c].fd == fd) {
                client_message(s, c);
                break;
            }
    }
}

/* The answer to a process's operation on another node's object. */
static void objop_answer(mn_svc_t *s, struct req *r, const dv_wire_view_t *v)
{
    int c = r->client;
    drop_req(s, r);
    if (c < 0 || s->cl[c].fd < 0)
        return;
    int e = (int)mn_get_i64(v, MN_ERRNO, 0);
    dv__msgw_t w;
    dv__msgw_init(&w);
    if (e) {
        char why[160] = "failed";
        dv__wire_get_str(v, MN_TEXT, why, sizeof(why), NULL);
        dv__msgw_i32(&w, e);
        dv__msgw_str(&w, why);
        dv__msg_send(s->cl[c].fd, DV_MSG_ERR, &w, NULL, 0, -1);
    } else {
        const dv_wire_field_t *d = dv__wire_find(v, MN_DATA);
        dv__msgw_i32(&w, (int32_t)mn_get_i64(v, MN_VALUE, 0));
        dv__msg_send(s->cl[c].fd, DV_MSG_OK, &w, d ? d->data : NULL,
                     d ? d->len : 0, -1);
    }
    dv__msgw_free(&w);
}

void mn_svc_on_wire(mn_svc_t *s, const dv_wire_view_t *v)
{
    int src = (int)mn_get_i64(v, MN_SRC, -1);
    if (src < 0 || src >= s->n)
        return;
    struct req *r = find_req(s, (uint64_t)mn_get_i64(v, MN_RID, 0));
    switch (v->type) {
    case DV_WIRE_SPAWN:
        svc_on_spawn(s, v, src);
        break;
    case DV_WIRE_KILL:
        svc_on_kill(s, v, src);
        break;
    case DV_WIRE_OBJ_OP:
        on_objop(s, v, src);
        break;
    case DV_WIRE_OBJ_REPLY:
        if (r && r->objop && r->node == src)
            objop_answer(s, r, v);
        break;
    case DV_WIRE_STARTED:
        if (r && !r->started && r->node == src) {
            int32_t pid = (int32_t)mn_get_i64(v, MN_PID, 0);
            r->started = 1;
            if (r->client >= 0 && s->cl[r->client].tab) {
                struct dv__ps_slot *sl = &s->cl[r->client].tab[r->slot];
                sl->pid = pid;
                atomic_store(&sl->state, DV_PS_RUNNING);
            }
            reply(s, r->client, 1, pid, NULL);
        }
        break;
    case DV_WIRE_EXITED:
        if (r && r->node == src)
            req_done(s, r, (int)mn_get_i64(v, MN_CODE, -SIGKILL));
        break;
    case DV_WIRE_OUTPUT_ACK:
        if (src == 0) {
            uint64_t k = (uint64_t)mn_get_i64(v, MN_VALUE, 0);
            s->unacked -= k < s->unacked ? (size_t)k : s->unacked;
        }
        break;
    case DV_WIRE_NODE_LOST:
        if (src == 0)
            mn_svc_node_lost(s, (int)mn_get_i64(v, MN_INDEX, -1),
                             mn_get_i64(v, MN_KEEP, 0) == 1);
        break;
    case DV_WIRE_ERROR:
        if (r && !r->started && r->node == src) {
            char why[96] = "failed";
            dv__wire_get_str(v, MN_TEXT, why, sizeof(why), NULL);
            if (r->client >= 0 && s->cl[r->client].tab)
                atomic_store(&s->cl[r->client].tab[r->slot].state, DV_PS_FREE);
            reply(s, r->client, 0, (int32_t)mn_get_i64(v, MN_ERRNO, EIO), why);
            drop_req(s, r);
        }
        break;
    default:
        break;
    }
}

void mn_svc_node_lost(mn_svc_t *s, int node, int keep)
{
    if (node < 0 || node >= s->n || node == s->self)
        return;
    if (keep && !s->lost[node]) {
        char one = 1;
        s->lost[node] = 1;
        /* Failing that, the node's processes see its processes as killed,
         * not why. */
        if (pwrite(s->lostfd, &one, 1, (off_t)node) != 1)
            errno = EIO;
    }
    for (int i = s->nrq - 1; i >= 0; i--)
        if (s->rq[i].node == node)
            req_done(s, &s->rq[i], -SIGKILL);
}
