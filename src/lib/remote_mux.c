/* One data-plane connection per process and home node, shared by every
 * relay of the process to that node (remote.c), so that a job's file
 * descriptors and the home agent's connections grow with its processes,
 * not with its queues. Each request carries its relay's id; answers are
 * read by whichever thread waits for one and finds nobody reading (the
 * leader), which hands other relays' answers to their slots and wakes
 * their threads. A sender whose socket is full reads in the meantime when
 * nobody else does, so that the home agent, blocked on an answer nobody
 * reads, never stops reading the requests that would free it. Frames
 * travel on an authenticated link (data_link.h): the sender (under the
 * write lock) owns its sending half, the reader its reading half. */
#define _GNU_SOURCE
#include "lib/remote_mux.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/error.h"
#include "drover/drover.h"
#include "lib/data_link.h"
#include "lib/remote_wire.h"
#include "lib/runtime.h"

/* Weak: white-box tests compile this file without the node table. */
#pragma weak dv_node_lost

/* Seconds a new connection waits for the home agent's greeting. */
#define GREETING_S 30
/* Handshakes tried: a port with too many strangers waiting to prove the
 * token may push a new connection out before it has. */
#define CONNECT_TRIES 4

struct dv__mux {
    pthread_mutex_t mu;  /* the slots, reading, the error */
    pthread_cond_t cv;   /* an answer came, the reader left, or lost */
    pthread_mutex_t wmu; /* requests go out whole */
    int fd;              /* open for the connection's life */
    dv__link_t link;     /* its keys and frame counts */
    int node, port;
    pid_t owner;
    _Atomic int refs;
    _Atomic int dead; /* lost: err and why say how */
    int reading;      /* a thread reads answers */
    char why[160];
    char host[64];
    struct dv__mux_slot **slot; /* nslot buckets (a power of two) */
    size_t nslot, used;
    dv__mux_t *next; /* in the process's table */
};

/* The process's connections, one per home node (a lost one stays until
 * the next dv__mux_get for its node replaces it). */
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static dv__mux_t *table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static _Atomic uint32_t last_id;

uint32_t dv__mux_new_id(void)
{
    uint32_t id;
    while ((id = atomic_fetch_add(&last_id, 1) + 1) == 0)
        ; /* 0 is the greeting's */
    return id;
}

/* fork(): the child keeps no connection of its parent's. Their copies are
 * left as they are (their locks may be held by threads the child lacks)
 * but for the descriptors, which would keep them open on the home agent. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&table_mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&table_mu);
}

static void fork_child(void)
{
    for (dv__mux_t *m = table; m; m = m->next) {
        close(m->fd);
        m->fd = -1;
    }
    table = NULL;
    pthread_mutex_unlock(&table_mu);
}

static void table_init(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

int dv__mux_mine(const dv__mux_t *m)
{
    return m->owner == getpid();
}

int dv__mux_usable(const dv__mux_t *m)
{
    return dv__mux_mine(m) && !atomic_load(&m->dead);
}

void dv__mux_forget(dv__mux_t **m)
{
    *m = NULL; /* a fork's copy: its memory stays, as the parent's did */
}

void dv__mux_unref(dv__mux_t **mp)
{
    dv__mux_t *m = *mp;
    *mp = NULL;
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    if (m->fd >= 0)
        close(m->fd);
    dv__link_free(&m->link);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->wmu);
    pthread_cond_destroy(&m->cv);
    free(m->slot);
    free(m);
}

/* ---- slots ---- */

/* Under m->mu. */
static struct dv__mux_slot **slot_place(dv__mux_t *m, uint32_t id)
{
    struct dv__mux_slot **p = &m->slot[id & (m->nslot - 1)];
    while (*p && (*p)->id != id)
        p = &(*p)->next;
    return p;
}

/* Under m->mu: twice the buckets; where memory is short, longer chains. */
static void slots_grow(dv__mux_t *m)
{
    size_t nb = m->nslot * 2;
    struct dv__mux_slot **b = calloc(nb, sizeof(struct dv__mux_slot *));
    if (!b)
        return;
    for (size_t i = 0; i < m->nslot; i++) {
        for (struct dv__mux_slot *s = m->slot[i], *nx; s; s = nx) {
            nx = s->next;
            s->next = b[s->id & (nb - 1)];
            b[s->id & (nb - 1)] = s;
        }
    }
    free(m->slot);
    m->slot = b;
    m->nslot = nb;
}

static void slot_clear(struct dv__mux_slot *s)
{
    free(s->a.why);
    free(s->a.data);
    memset(&s->a, 0, sizeof(s->a));
    s->full = 0;
}

void dv__mux_attach(dv__mux_t *m, struct dv__mux_slot *s)
{
    pthread_mutex_lock(&m->mu);
    if (m->used >= m->nslot)
        slots_grow(m);
    struct dv__mux_slot **p = slot_place(m, s->id);
    if (!*p) {
        s->next = NULL;
        *p = s;
        m->used++;
    }
    pthread_mutex_unlock(&m->mu);
}

void dv__mux_detach(dv__mux_t *m, struct dv__mux_slot *s)
{
    pthread_mutex_lock(&m->mu);
    struct dv__mux_slot **p = slot_place(m, s->id);
    if (*p == s) {
        *p = s->next;
        m->used--;
    }
    slot_clear(s);
    pthread_mutex_unlock(&m->mu);
}

/* ---- reading answers ---- */

/* What a failed read says: its errno, or that the peer closed (the end
 * of the stream reads as ECONNRESET, as a reset does). */
static const char *read_failure(int e)
{
    return e == EAGAIN            ? "no answer"
           : e && e != ECONNRESET ? strerror(e)
                                  : "the connection closed";
}

struct frame {
    struct dv__data_rep p;
    char *why;
    void *data;
    int nomem; /* the result did not fit in memory: read and dropped */
};

/* Read and drop n bytes (they count for the frame's tag). */
static int skip(dv__link_t *l, uint64_t n)
{
    char buf[16384];
    while (n) {
        size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
        if (dv__link_read(l, buf, k) < 0)
            return -1;
        n -= k;
    }
    return 0;
}

/* Read one answer, verified (without m->mu: the caller is the reader).
 * -1 with *e the cause (EBADMSG: a frame failed its check). */
static int read_frame(dv__mux_t *m, struct frame *f, int *e)
{
    memset(f, 0, sizeof(*f));
    struct dv__data_rep *p = &f->p;
    errno = 0;
    if (dv__link_read_head(&m->link, p, sizeof(*p)) < 0) {
        *e = errno;
        return -1;
    }
    if (p->magic != DV_DATA_MAGIC || p->textlen > DV_DATA_TEXT_MAX ||
        p->len > DV_MESSAGE_MAX) {
        *e = EPROTO;
        return -1;
    }
    f->why = p->textlen ? calloc(1, p->textlen + 1) : NULL;
    f->data = p->len ? malloc(p->len) : NULL;
    f->nomem = (p->textlen && !f->why) || (p->len && !f->data);
    int rc = 0;
    if (p->textlen)
        rc = f->why ? dv__link_read(&m->link, f->why, p->textlen)
                    : skip(&m->link, p->textlen);
    if (rc == 0 && p->len)
        rc = f->data ? dv__link_read(&m->link, f->data, p->len)
                     : skip(&m->link, p->len);
    if (rc == 0)
        rc = dv__link_read_end(&m->link);
    if (rc < 0) {
        *e = errno;
        free(f->why);
        free(f->data);
    }
    return rc;
}

/* Under m->mu: hand f to its relay (an answer nobody waits for any more,
 * that of a relay closed meanwhile, is dropped). */
static int deliver(dv__mux_t *m, struct frame *f)
{
    struct dv__mux_slot *s = *slot_place(m, f->p.relay);
    int twice = s && s->full; /* two answers to one request */
    if (s && !twice) {
        s->full = 1;
        s->a.rc = f->nomem ? -1 : f->p.rc;
        s->a.err = f->nomem ? ENOMEM : f->p.err;
        s->a.value = f->p.value;
        s->a.why = f->why;
        s->a.data = f->data;
        s->a.len = f->data ? f->p.len : 0;
        return 0;
    }
    free(f->why);
    free(f->data);
    return twice ? -1 : 0;
}

/* Milliseconds a reader waits on a silent connection before it looks
 * whether the home node was lost meanwhile (a node that hangs rather than
 * dies keeps its connections open). */
#define LOST_CHECK_MS 500

static int node_lost(const dv__mux_t *m)
{
    return dv_node_lost && dv_node_lost(m->node) == 1;
}

/* Without m->mu: wait until an answer starts to arrive. -1 with *e
 * EHOSTDOWN when the home node is lost first. */
static int await_frame(dv__mux_t *m, int *e)
{
    struct pollfd p = {m->fd, POLLIN, 0};
    while (poll(&p, 1, LOST_CHECK_MS) == 0)
        if (node_lost(m)) {
            *e = EHOSTDOWN;
            return -1;
        }
    return 0;
}

/* Under m->mu: the connection is lost; wake everybody. */
static void mark_dead(dv__mux_t *m, int e)
{
    if (!atomic_load(&m->dead)) {
        snprintf(m->why, sizeof(m->why), "%s",
                 e == EHOSTDOWN ? "the node is lost"
                 : e == EPROTO  ? "a bad frame"
                 : e == EBADMSG ? "a frame failed its check (changed on the "
                                  "way?)"
                                : read_failure(e));
        atomic_store(&m->dead, 1);
        shutdown(m->fd, SHUT_RDWR); /* a blocked sender gives up */
    }
    pthread_cond_broadcast(&m->cv);
}

/* Under m->mu, with reading set by the caller: read one answer without the
 * lock and hand it on. */
static void read_one(dv__mux_t *m)
{
    struct frame f;
    int e = EPROTO;
    memset(&f, 0, sizeof(f));
    pthread_mutex_unlock(&m->mu);
    int rc = await_frame(m, &e);
    if (rc == 0)
        rc = read_frame(m, &f, &e);
    pthread_mutex_lock(&m->mu);
    if (rc < 0 || deliver(m, &f) < 0)
        mark_dead(m, e);
    m->reading = 0;
    pthread_cond_broadcast(&m->cv);
}

static int lost(dv__mux_t *m, const char *ctx, dv_error_t *err)
{
    if (node_lost(m))
        return dv__errprintf(err, EHOSTDOWN, "%s: node %d (%s) is lost", ctx,
                             m->node, m->host);
    return dv__errprintf(err, ENOTCONN, "%s: lost node %d (%s): %s", ctx,
                         m->node, m->host, m->why);
}

int dv__mux_wait(dv__mux_t *m, struct dv__mux_slot *s, struct dv__mux_answer *a,
                 const char *ctx, dv_error_t *err)
{
    pthread_mutex_lock(&m->mu);
    while (!s->full && !atomic_load(&m->dead)) {
        if (m->reading) {
            pthread_cond_wait(&m->cv, &m->mu);
        } else {
            m->reading = 1;
            read_one(m);
        }
    }
    int full = s->full;
    if (full) {
        *a = s->a;
        memset(&s->a, 0, sizeof(s->a));
        s->full = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return full ? 0 : lost(m, ctx, err);
}

/* The socket is full while a request goes out: read answers meanwhile if
 * nobody else does (the home agent may be waiting for us to). */
static int send_wait(void *ctx)
{
    dv__mux_t *m = ctx;
    pthread_mutex_lock(&m->mu);
    int lead = !m->reading && !atomic_load(&m->dead);
    if (lead)
        m->reading = 1;
    pthread_mutex_unlock(&m->mu);
    struct pollfd p = {m->fd, (short)(POLLOUT | (lead ? POLLIN : 0)), 0};
    int n = poll(&p, 1, lead ? LOST_CHECK_MS : 10);
    if (!lead)
        return atomic_load(&m->dead) ? -1 : 0;
    pthread_mutex_lock(&m->mu);
    if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        read_one(m);
    } else {
        if (n == 0 && node_lost(m)) /* it hangs: give up on it */
            mark_dead(m, EHOSTDOWN);
        m->reading = 0;
    }
    pthread_cond_broadcast(&m->cv);
    int dead = atomic_load(&m->dead);
    pthread_mutex_unlock(&m->mu);
    return dead ? -1 : 0;
}

int dv__mux_send(dv__mux_t *m, struct dv__data_req *q, const void *in,
                 const char *ctx, dv_error_t *err)
{
    pthread_mutex_lock(&m->wmu);
    int rc = atomic_load(&m->dead)
                 ? -1
                 : dv__data_send_request(&m->link, q, in, send_wait, m);
    int e = errno;
    pthread_mutex_unlock(&m->wmu);
    if (rc == 0)
        return 0;
    pthread_mutex_lock(&m->mu);
    mark_dead(m, e);
    pthread_mutex_unlock(&m->mu);
    return lost(m, ctx, err);
}

/* ---- connecting ---- */

/* The home agent's greeting, its first frame: 0 when it took the
 * connection. */
static int read_greeting(dv__mux_t *m, dv_error_t *err)
{
    struct dv__data_rep p;
    char why[DV_DATA_TEXT_MAX + 1] = "";
    errno = 0;
    if (dv__link_read_head(&m->link, &p, sizeof(p)) < 0) {
        int e = errno;
        return dv__errprintf(
            err, e ? e : ECONNRESET,
            "node %d (%s): no greeting from its data port: %s", m->node,
            m->host, e == EBADMSG ? "it failed its check" : read_failure(e));
    }
    if (p.magic != DV_DATA_MAGIC || p.relay != 0 ||
        p.textlen > DV_DATA_TEXT_MAX || p.len ||
        dv__link_read(&m->link, why, p.textlen) < 0 ||
        dv__link_read_end(&m->link) < 0)
        return dv__errprintf(err, EPROTO,
                             "node %d (%s): a bad greeting from its data port",
                             m->node, m->host);
    int e = p.err > 0 ? p.err : ECONNREFUSED;
    if (p.rc < 0)
        return dv__errprintf(err, e, "node %d (%s): its data port refused: %s",
                             m->node, m->host, *why ? why : strerror(e));
    return 0;
}

/* The job's data token, from the runtime dir. */
static int read_token(uint8_t *tok)
{
    char path[4096];
    const char *dir = getenv(DV_ENV_RUNDIR);
    if (!dir)
        return -1;
    snprintf(path, sizeof(path), "%s/token", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int ok = fd >= 0 && read(fd, tok, DV_DATA_TOKEN) == DV_DATA_TOKEN;
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

/* One connection to the home agent's data port: the handshake and the
 * greeting, each bounded in time. */
static int dial(dv__mux_t *m, const struct sockaddr_in *sa, const uint8_t *tok,
                dv_error_t *err)
{
    struct timeval tv = {GREETING_S, 0}, none = {0, 0};
    int one = 1;
    dv_error_t why = {0};
    dv__link_free(&m->link); /* an earlier try's */
    if (m->fd >= 0)
        close(m->fd);
    m->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m->fd < 0 ||
        connect(m->fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
        setsockopt(m->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        return dv__errprintf(err, errno ? errno : ENOTCONN, "node %d (%s): %s",
                             m->node, m->host, strerror(errno));
    if (dv__link_connect(&m->link, m->fd, tok, &why) < 0)
        return dv__errprintf(err, errno, "node %d (%s): its data port %s",
                             m->node, m->host, why.text);
    if (read_greeting(m, err) < 0)
        return -1;
    setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    return 0;
}

/* Connect m to the home agent's data port and prove the token; again
 * after a short pause when the port hung up in the handshake. */
static int mux_connect(dv__mux_t *m, dv_error_t *err)
{
    dv_node_info_t ni;
    uint8_t tok[DV_DATA_TOKEN];
    if (dv_node_get(m->node, &ni, NULL) < 0)
        return dv__errprintf(err, ENOTCONN, "no node %d", m->node);
    snprintf(m->host, sizeof(m->host), "%s", ni.hostname);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)m->port)};
    if (read_token(tok) < 0 ||
        inet_pton(AF_INET, ni.address, &sa.sin_addr) != 1)
        return dv__errprintf(err, ENOTCONN, "node %d: no data plane", m->node);
    int rc = -1;
    for (int k = 0; k < CONNECT_TRIES; k++) {
        if (k)
            usleep(20000u << (2 * k)); /* 80 ms, 320 ms, 1.3 s */
        rc = dial(m, &sa, tok, err);
        if (rc == 0 || (errno != ECONNRESET && errno != EPIPE))
            break;
    }
    OPENSSL_cleanse(tok, sizeof(tok));
    return rc;
}

static dv__mux_t *mux_new(int node, int port, dv_error_t *err)
{
    dv__mux_t *m = calloc(1, sizeof(*m));
    struct dv__mux_slot **b = calloc(64, sizeof(struct dv__mux_slot *));
    if (!m || !b) {
        free(m);
        free(b);
        dv__errprintf(err, ENOMEM, "remote: out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->wmu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->slot = b;
    m->nslot = 64;
    m->node = node;
    m->port = port;
    m->owner = getpid();
    m->fd = -1;
    atomic_init(&m->refs, 1);
    if (mux_connect(m, err) < 0) {
        int e = errno;
        dv__mux_unref(&m);
        errno = e;
        return NULL;
    }
    return m;
}

/* Under table_mu: take node's connection out of the table when it can no
 * longer serve; return it when it can (with a reference for the caller). */
static dv__mux_t *table_find(int node, int port)
{
    for (dv__mux_t **p = &table; *p; p = &(*p)->next) {
        dv__mux_t *m = *p;
        if (m->node != node)
            continue;
        if (m->port == port && !atomic_load(&m->dead)) {
            atomic_fetch_add(&m->refs, 1);
            return m;
        }
        *p = m->next;
        dv__mux_unref(&m);
        return NULL;
    }
    return NULL;
}

dv__mux_t *dv__mux_get(int node, int port, dv_error_t *err)
{
    pthread_once(&table_once, table_init);
    pthread_mutex_lock(&table_mu);
    dv__mux_t *m = table_find(node, port);
    pthread_mutex_unlock(&table_mu);
    if (m)
        return m;
    /* Connect without the table's lock: other nodes' relays go on. */
    dv__mux_t *fresh = mux_new(node, port, err);
    if (!fresh)
        return NULL;
    pthread_mutex_lock(&table_mu);
    if (!(m = table_find(node, port))) {
        atomic_fetch_add(&fresh->refs, 1); /* the table's */
        fresh->next = table;
        table = fresh;
        m = fresh;
        fresh = NULL;
    }
    pthread_mutex_unlock(&table_mu);
    dv__mux_unref(&fresh); /* another thread was first */
    return m;
}
