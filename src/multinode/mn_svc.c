/* The node service of the multi-node runtime (see mn.h): serves the
 * processes of its node on rundir/agent.sock (a start or a signal for a
 * process on another node; the caller's status table is handed over at
 * hello so that the exit code lands where dv_process_join waits), starts
 * processes that other nodes ask for (a fork by the node's host, mn_host.h;
 * until it is up, an exec of the job's program with DROVER_TASK), and
 * reports their end to the node that asked. */
#define _GNU_SOURCE
#include "multinode/mn.h"
#include "multinode/mn_env.h"
#include "multinode/mn_host.h"
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

extern char **environ;

#define TAB_BYTES (DV_PS_SLOTS * sizeof(struct dv__ps_slot))

struct client {
    int fd;
    struct dv__ps_slot *tab;
};

/* A process a client of this node started on another node. */
struct req {
    uint64_t rid;
    int client; /* -1 once the client left */
    uint32_t slot;
    int node;
    int started;
    int objop; /* a queue/event operation, not a process */
};

/* A start another node asked for, waiting for the node's host. */
struct pend {
    int src;
    uint64_t rid;
    int gpu;
    char task[128];
    void *arg;
    size_t len;
};

/* The longest starts wait for the host to come up (the program's own
 * start before dv_init: an exec would take that long too). */
#define HOST_WAIT_S 30.0

/* A process started here for another node. */
struct task {
    pid_t pid;
    int origin;
    uint64_t rid;
    int hosted;    /* started by the host's fork server (mn_host.h) */
    uint32_t slot; /* its slot there */
};

struct mn_svc {
    int self, n;
    char path[108];
    char prog[PATH_MAX];
    char rundir[PATH_MAX];
    char **argv;
    char *origin_cwd, *origin_env; /* mn_svc_set_origin(), or NULL */
    size_t origin_len;
    int lfd;
    int lostfd;           /* rundir/lost (DV_LOST_FILE), or -1 */
    char *lost;           /* per node: 1 once lost with the job going on */
    int outr[3], outw[3]; /* [1], [2]: pipes of stdout/stderr, or -1 */
    struct client *cl;
    int ncl;
    struct req *rq;
    int nrq, caprq;
    struct task *tk;
    int ntk, captk;
    /* The node's host: 0 none yet, its pid once started, -1 when there is
     * to be none (it failed, or ended); connected once it said so. */
    pid_t host_pid;
    mn_host_t *host;
    /* Starts asked for while the host comes up, in order; when it is not
     * up by host_wait_until, they and later ones are execs until it is. */
    struct pend *pd;
    int npd, cappd;
    double host_wait_until;
    uint64_t next_rid;
    int done[2];  /* blocking object operations finished (struct objop *) */
    int inflight; /* of those, still running */
    _Atomic int stopping; /* the service ends: blocked operations give up */
    struct dv__serve_cache *cache;
    mn_send_f send;
    void *send_arg;
    /* Output sent to the head and not yet written by it (mn_out.h): the
     * pipes are read only within the credit, so a slow reader of drover
     * run's stdout blocks the writing processes, never the loops. */
    size_t credit, unacked;
};

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

static int svc_send(mn_svc_t *s, dv_wire_buf_t *b)
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
static void host_ready(mn_svc_t *s, int c);
static void host_gone(mn_svc_t *s);
static void host_check_wait(mn_svc_t *s);
static void drain_pending(mn_svc_t *s);

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
    mn_host_close(&s->host);
    for (int i = 0; i < s->npd; i++)
        free(s->pd[i].arg);
    free(s->pd);
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
            munmap(s->cl[i].tab, TAB_BYTES);
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
        munmap(s->cl[c].tab, TAB_BYTES);
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
        void *m =
            mmap(NULL, TAB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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
        host_ready(s, c);
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
    host_check_wait(s);
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
                host_gone(s);
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

/* ---- processes started here for other nodes ---- */

/* The environment of a started process: the origin's (or ours) plus its
 * task. */
static char **task_env(const mn_svc_t *s, const char *task, int argfd, int gpu)
{
    size_t k = 0;
    char **e = mn_env_task(s->origin_env, s->origin_len, gpu, 4, &k);
    if (!e)
        return NULL;
    char v[160];
    snprintf(v, sizeof(v), "%s=%s", DV_ENV_TASK, task);
    e[k++] = strdup(v);
    snprintf(v, sizeof(v), "%s=%d", DV_ENV_TASK_ARG_FD, argfd);
    e[k++] = strdup(v);
    if (gpu >= 0) {
        snprintf(v, sizeof(v), "CUDA_VISIBLE_DEVICES=%d", gpu);
        e[k++] = strdup(v);
        snprintf(v, sizeof(v), "ROCR_VISIBLE_DEVICES=%d", gpu);
        e[k++] = strdup(v);
    }
    for (size_t i = 0; i < k; i++)
        if (!e[i]) {
            for (size_t j = i + 1; j < k; j++)
                free(e[j]);
            mn_env_free(e);
            return NULL;
        }
    return e;
}

int mn_svc_set_origin(mn_svc_t *s, const char *cwd, const void *env, size_t len)
{
    char *c = strdup(cwd ? cwd : "");
    char *b = malloc(len ? len : 1);
    if (!c || !b) {
        free(c);
        free(b);
        errno = ENOMEM;
        return -1;
    }
    if (len)
        memcpy(b, env, len);
    free(s->origin_cwd);
    free(s->origin_env);
    s->origin_cwd = c;
    s->origin_env = b;
    s->origin_len = len;
    return 0;
}

/* In the child before exec: the origin's directory, where this node has
 * it (as srun, which goes on elsewhere when it cannot). */
static void enter_origin_dir(const mn_svc_t *s)
{
    if (!s->origin_cwd || !*s->origin_cwd || chdir(s->origin_cwd) == 0)
        return;
    char line[PATH_MAX + 128];
    int n = snprintf(line, sizeof(line),
                     "drover: node %d: cannot enter %s (%s): the process "
                     "runs in the agent's directory\n",
                     s->self, s->origin_cwd, strerror(errno));
    if (n > 0 &&
        write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line)) < 0)
        return;
}

/* fork + exec the program for a task; returns the pid or -1. */
static pid_t spawn_task(mn_svc_t *s, const char *task, const void *arg,
                        size_t len, int gpu)
{
    int mfd = memfd_create("drover-arg", 0);
    if (mfd < 0)
        return -1;
    if (len && write(mfd, arg, len) != (ssize_t)len) {
        close(mfd);
        return -1;
    }
    char **env = task_env(s, task, mfd, gpu);
    pid_t self = getpid(), pid = env ? fork() : -1;
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL); /* the agent ignores it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self)
            _exit(127);
        /* Not the agent's stdin (its launch's pipe): nothing, as a
         * multiprocessing child reads. */
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul >= 0)
            dup2(nul, 0);
        if (s->outw[1] >= 0)
            dup2(s->outw[1], 1);
        if (s->outw[2] >= 0)
            dup2(s->outw[2], 2);
        enter_origin_dir(s);
        execve(s->prog, s->argv, env);
        _exit(127);
    }
    close(mfd);
    mn_env_free(env);
    return pid;
}

/* Tell the node that asked that process i ended with code. */
static void task_ended(mn_svc_t *s, int i, int code)
{
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, DV_WIRE_EXITED, s->self, s->tk[i].origin) == 0) {
        dv__wire_put_u64(&b, MN_RID, s->tk[i].rid);
        dv__wire_put_u64(&b, MN_CODE, (uint64_t)(int64_t)code);
        svc_send(s, &b);
    }
    s->tk[i] = s->tk[--s->ntk];
}

static void host_ended(void *arg, uint32_t slot, pid_t pid, int code)
{
    mn_svc_t *s = arg;
    for (int i = 0; i < s->ntk; i++)
        if (s->tk[i].hosted && s->tk[i].slot == slot && s->tk[i].pid == pid) {
            task_ended(s, i, code);
            return;
        }
}

/* The host's fork server is gone, and its processes with it: they are
 * reported killed; later starts exec the program again. */
static void host_gone(mn_svc_t *s)
{
    mn_host_close(&s->host);
    if (s->host_pid > 0)
        kill(s->host_pid, SIGKILL);
    s->host_pid = -1;
    for (int i = s->ntk - 1; i >= 0; i--)
        if (s->tk[i].hosted) {
            kill(s->tk[i].pid, SIGKILL);
            task_ended(s, i, -SIGKILL);
        }
    drain_pending(s);
}

/* The host said its fork server listens: become its client. */
static void host_ready(mn_svc_t *s, int c)
{
    struct ucred uc;
    socklen_t ul = sizeof(uc);
    if (s->host || s->host_pid <= 0 ||
        getsockopt(s->cl[c].fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0 ||
        uc.pid != s->host_pid)
        return;
    dv_error_t err;
    s->host = mn_host_connect(s->rundir, s->host_pid, host_ended, s, &err);
    if (!s->host)
        host_gone(s);
    else
        drain_pending(s);
}

/* Start task in a fork of the host when there is one, else an exec of the
 * program. Returns the pid or -1. */
static pid_t start_task(mn_svc_t *s, struct task *t, const char *task,
                        const void *arg, size_t len, int gpu)
{
    t->hosted = 0;
    if (s->host) {
        pid_t pid = mn_host_start(s->host, task, arg, len, gpu, &t->slot);
        if (pid > 0) {
            t->hosted = 1;
            return pid;
        }
        if (errno == EPIPE)
            host_gone(s);
    }
    return spawn_task(s, task, arg, len, gpu);
}

/* Start a process for node src's request rid and answer it. */
static void start_now(mn_svc_t *s, int src, uint64_t rid, const char *task,
                      const void *arg, size_t len, int gpu)
{
    pid_t pid = -1;
    struct task t = {0, src, rid, 0, 0};
    if (s->ntk == s->captk) {
        int cap = s->captk ? 2 * s->captk : 64;
        struct task *n = realloc(s->tk, (size_t)cap * sizeof(*n));
        if (n) {
            s->tk = n;
            s->captk = cap;
        }
    }
    errno = ENOMEM;
    if (s->ntk < s->captk)
        pid = start_task(s, &t, task, arg, len, gpu);
    int e = errno;
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, pid > 0 ? DV_WIRE_STARTED : DV_WIRE_ERROR, s->self,
                     src) < 0)
        return;
    dv__wire_put_u64(&b, MN_RID, rid);
    if (pid > 0) {
        t.pid = pid;
        s->tk[s->ntk++] = t;
        dv__wire_put_u64(&b, MN_PID, (uint64_t)pid);
    } else {
        dv__wire_put_u64(&b, MN_ERRNO, (uint64_t)e);
        dv__wire_put_str(&b, MN_TEXT, strerror(e));
    }
    svc_send(s, &b);
}

/* Start what waits for the host: forks of it once it is up, execs when
 * it is gone or late. */
static void drain_pending(mn_svc_t *s)
{
    struct pend *q = s->pd;
    int n = s->npd;
    s->pd = NULL;
    s->npd = s->cappd = 0;
    for (int i = 0; i < n; i++) {
        start_now(s, q[i].src, q[i].rid, q[i].task, q[i].arg, q[i].len,
                  q[i].gpu);
        free(q[i].arg);
    }
    free(q);
}

/* Keep a start until the host is up. 0, or -1 when it cannot wait. */
static int add_pending(mn_svc_t *s, int src, uint64_t rid, const char *task,
                       const void *arg, size_t len, int gpu)
{
    if (s->npd == s->cappd) {
        int cap = s->cappd ? 2 * s->cappd : 16;
        struct pend *n = realloc(s->pd, (size_t)cap * sizeof(*n));
        if (!n)
            return -1;
        s->pd = n;
        s->cappd = cap;
    }
    struct pend *p = &s->pd[s->npd];
    *p = (struct pend){src, rid, gpu, "", malloc(len ? len : 1), len};
    if (!p->arg)
        return -1;
    memcpy(p->arg, arg, len);
    snprintf(p->task, sizeof(p->task), "%s", task);
    s->npd++;
    return 0;
}

/* At the first start another node asks for: the node's host. */
static void host_begin(mn_svc_t *s)
{
    s->host_pid = spawn_task(s, DV_HOST_TASK, NULL, 0, -1);
    if (s->host_pid <= 0)
        s->host_pid = -1;
    s->host_wait_until = mn_now() + HOST_WAIT_S;
}

/* Starts wait for the host no longer than HOST_WAIT_S. */
static void host_check_wait(mn_svc_t *s)
{
    if (s->npd && mn_now() > s->host_wait_until)
        drain_pending(s);
}

static void on_spawn(mn_svc_t *s, const dv_wire_view_t *v, int src)
{
    char task[128];
    const dv_wire_field_t *arg = dv__wire_find(v, MN_ARG);
    uint64_t rid = (uint64_t)mn_get_i64(v, MN_RID, 0);
    int gpu = (int)mn_get_i64(v, MN_GPU, -1);
    if (dv__wire_get_str(v, MN_TASK, task, sizeof(task), NULL) < 0 || !arg ||
        arg->len > DV_MESSAGE_MAX) {
        dv_wire_buf_t b;
        if (mn_msg_begin(&b, DV_WIRE_ERROR, s->self, src) < 0)
            return;
        dv__wire_put_u64(&b, MN_RID, rid);
        dv__wire_put_u64(&b, MN_ERRNO, EPROTO);
        dv__wire_put_str(&b, MN_TEXT, strerror(EPROTO));
        svc_send(s, &b);
        return;
    }
    if (s->host_pid == 0)
        host_begin(s);
    int waits = s->host_pid > 0 && !s->host && mn_now() <= s->host_wait_until;
    if (!waits || add_pending(s, src, rid, task, arg->data, arg->len, gpu) < 0)
        start_now(s, src, rid, task, arg->data, arg->len, gpu);
}

void mn_svc_reaped(mn_svc_t *s, pid_t pid, int status)
{
    if (pid == s->host_pid) {
        /* Its fork server ends with it: the connection tells, once the
         * processes it stops are reported. What waits for it is exec'd. */
        s->host_pid = -1;
        drain_pending(s);
        return;
    }
    for (int i = 0; i < s->ntk; i++) {
        if (s->tk[i].pid != pid || s->tk[i].hosted)
            continue;
        int code = WIFEXITED(status)
                       ? WEXITSTATUS(status)
                       : -(WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL);
        task_ended(s, i, code);
        return;
    }
}

static void on_kill(mn_svc_t *s, const dv_wire_view_t *v, int src)
{
    uint64_t rid = (uint64_t)mn_get_i64(v, MN_RID, 0);
    int sig = (int)mn_get_i64(v, MN_SIG, 0);
    if (sig != SIGTERM && sig != SIGKILL)
        return;
    for (int i = 0; i < s->ntk; i++) {
        if (s->tk[i].origin != src || s->tk[i].rid != rid)
            continue;
        if (!s->tk[i].hosted)
            kill(s->tk[i].pid, sig);
        else if (mn_host_signal(s->host, s->tk[i].slot, sig) < 0 &&
                 errno == EPIPE)
            host_gone(s);
        return;
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
        on_spawn(s, v, src);
        break;
    case DV_WIRE_KILL:
        on_kill(s, v, src);
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
