/* The head of a multi-node job (`drover run --hostfile ...` / Slurm): it
 * makes the job's keys, listens with CURVE, launches one `drover agent`
 * per other node (keys on the launch's stdin), waits until each said
 * hello (naming a node that fails with its launcher's last error line),
 * hands out the node table, then, in a thread beside the supervision of
 * the main process, routes messages between nodes, serves node 0's
 * processes (mn_svc), prints the output of every node (--label), and
 * watches the heartbeats; a lost node ends the job (with --keep-going the
 * job goes on without it). */
#define _GNU_SOURCE
#include "multinode/mn_head.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "multinode/launch.h"
#include "common/error.h"
#include "lib/internal.h"

int mn_prefix_parse(const char *prefix, struct in_addr *addr, int *bits)
{
    char a[64];
    struct in_addr in;
    const char *sl = strchr(prefix, '/');
    size_t l = sl ? (size_t)(sl - prefix) : strlen(prefix);
    char *end = NULL;
    long b = sl ? strtol(sl + 1, &end, 10) : 32;
    if (l >= sizeof(a) || (sl && (end == sl + 1 || *end)) || b < 0 || b > 32)
        goto bad;
    memcpy(a, prefix, l);
    a[l] = 0;
    if (inet_pton(AF_INET, a, &in) != 1)
        goto bad;
    if (addr)
        *addr = in;
    if (bits)
        *bits = (int)b;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

int mn_local_addr(const char *prefix, char *out, size_t cap)
{
    struct in_addr want = {0};
    int bits = -1;
    if (prefix && *prefix && mn_prefix_parse(prefix, &want, &bits) < 0)
        return -1;
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) < 0)
        return -1;
    int r = -1;
    for (i = ifs; i && r < 0; i = i->ifa_next) {
        /* Loopback only when the prefix asks for it (several nodes
         * emulated on one host with DROVER_NODE_NAME). */
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
            ((i->ifa_flags & IFF_LOOPBACK) && bits < 0))
            continue;
        struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        uint32_t mask = bits <= 0 ? 0 : htonl(~0u << (32 - bits));
        if (bits >= 0 && (a.s_addr & mask) != (want.s_addr & mask))
            continue;
        if (inet_ntop(AF_INET, &a, out, (socklen_t)cap))
            r = 0;
    }
    freeifaddrs(ifs);
    return r;
}

int mn_table_line(const dv_node_info_t *n, int port, char *out, size_t cap)
{
    return snprintf(out, cap, "%d %llx %d %d %s %s %d\n", n->index,
                    (unsigned long long)n->uid, n->cpus, n->gpus, n->hostname,
                    n->address[0] ? n->address : "-", port);
}

int mn_token_write(const char *rundir, const uint8_t *token)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/token", rundir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int r = write(fd, token, 32) == 32 ? 0 : -1;
    close(fd);
    return r;
}

/* ---- sending ---- */

void head_stats(mn_head_t *h, const char *phase)
{
    const char *on = getenv("DROVER_WIREUP_STATS");
    struct rusage ru;
    if (!on || !*on || getrusage(RUSAGE_SELF, &ru) < 0)
        return;
    double u = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
    double s = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    int agents = h->n > 1 ? h->n - 1 : 1;
    fprintf(stderr,
            "drover: run: wire-up: %s: %d nodes, %.3f s, head cpu %.3f s "
            "(user %.3f, sys %.3f), sent %llu bytes in %llu messages, %.0f "
            "bytes per agent\n",
            phase, h->n, mn_now() - h->t0, u + s, u, s,
            (unsigned long long)h->sent_bytes, (unsigned long long)h->sent_msgs,
            (double)h->sent_bytes / agents);
}

int send_to(mn_head_t *h, int dst, dv_wire_buf_t *b)
{
    if (dst <= 0 || dst >= h->n || !h->nd[dst].hello || h->nd[dst].dead) {
        dv__wire_buf_release(b);
        errno = EHOSTUNREACH;
        return -1;
    }
    h->sent_bytes += b->len;
    h->sent_msgs++;
    return dv__transport_send(h->router, h->nd[dst].peer, h->nd[dst].peer_len,
                              b, NULL);
}

int node_of(mn_head_t *h, const dv_transport_msg_t *m)
{
    int src = (int)mn_get_i64(&m->view, MN_SRC, -1);
    if (src <= 0 || src >= h->n || !h->nd[src].hello ||
        h->nd[src].peer_len != m->peer_len ||
        memcmp(h->nd[src].peer, m->peer, m->peer_len))
        return -1;
    return src;
}

static void send_bcast(mn_head_t *h, int dst, int type, int index, int shutdown)
{
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, type, 0, dst) < 0)
        return;
    if (index >= 0)
        dv__wire_put_u64(&b, MN_INDEX, (uint64_t)index);
    if (shutdown)
        dv__wire_put_u64(&b, MN_SHUTDOWN, 1);
    if (type == DV_WIRE_NODE_LOST && h->o.keep_going)
        dv__wire_put_u64(&b, MN_KEEP, 1);
    if (dv__wire_end(&b, NULL) == 0)
        send_to(h, dst, &b);
    dv__wire_buf_release(&b);
}

static void bcast_below(mn_head_t *h, int i, int type, int index, int shutdown)
{
    int first, end;
    mn_tree_children(i, h->k, h->n, &first, &end);
    for (int c = first; c < end; c++)
        if (!h->nd[c].dead)
            send_bcast(h, c, type, index, shutdown);
        else
            bcast_below(h, c, type, index, shutdown);
}

void head_broadcast(mn_head_t *h, int type, int index, int shutdown)
{
    bcast_below(h, 0, type, index, shutdown);
}

/* mn_svc's sender: node 0's own messages go to their MN_DST. */
int head_send(void *arg, int dst, dv_wire_buf_t *b)
{
    mn_head_t *h = arg;
    dv_wire_view_t v;
    (void)dst;
    if (dv__wire_decode(b->data, b->len, &v, NULL) < 0) {
        dv__wire_buf_release(b);
        return -1;
    }
    int to = (int)mn_get_i64(&v, MN_DST, -1);
    if (to == 0) {
        on_local(h, &v);
        dv__wire_buf_release(b);
        return 0;
    }
    return send_to(h, to, b);
}

void send_simple(mn_head_t *h, int dst, int type, int shutdown)
{
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, type, 0, dst) < 0)
        return;
    if (shutdown)
        dv__wire_put_u64(&b, MN_SHUTDOWN, 1);
    if (dv__wire_end(&b, NULL) == 0)
        send_to(h, dst, &b);
    dv__wire_buf_release(&b);
}

/* ---- output of other nodes ---- */

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

/* To the writer while it runs (the loop never waits for the reader), else
 * (wire-up failed, or the loop is over) straight out. */
static void emit(mn_head_t *h, int fd, const char *p, size_t n)
{
    if (h->out)
        mn_out_put(h->out, fd, p, n, -1, 0);
    else
        write_all(fd, p, n);
}

void head_say(mn_head_t *h, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k > sizeof(line) - 2)
        k = (int)sizeof(line) - 2;
    line[k++] = '\n';
    emit(h, 2, line, (size_t)k);
}

/* Labelled lines gathered for one put: a lock and a wake-up of the
 * writer a message, not two a line. */
struct lines {
    char b[16384];
    size_t n;
};

static void lines_add(mn_head_t *h, struct lines *l, int fd, const char *p,
                      size_t n)
{
    if (l->n + n > sizeof(l->b)) {
        emit(h, fd, l->b, l->n);
        l->n = 0;
    }
    if (n > sizeof(l->b)) {
        emit(h, fd, p, n);
        return;
    }
    memcpy(l->b + l->n, p, n);
    l->n += n;
}

/* --label: whole lines, each after its node's name. */
static void put_labelled(mn_head_t *h, struct node *d, int stream,
                         const char *p, size_t n, int flush)
{
    char pre[80];
    int pl = snprintf(pre, sizeof(pre), "[%s] ", d->info.hostname);
    struct lines out;
    out.n = 0;
    while (n || (flush && d->olen[stream])) {
        size_t room = sizeof(d->obuf[stream]) - d->olen[stream];
        size_t k = n < room ? n : room;
        memcpy(d->obuf[stream] + d->olen[stream], p, k);
        d->olen[stream] += k;
        p += k;
        n -= k;
        char *b = d->obuf[stream], *nl;
        size_t len = d->olen[stream];
        while ((nl = memchr(b, '\n', len))) {
            lines_add(h, &out, stream, pre, (size_t)pl);
            lines_add(h, &out, stream, b, (size_t)(nl - b) + 1);
            len -= (size_t)(nl - b) + 1;
            b = nl + 1;
        }
        if (len == sizeof(d->obuf[stream]) || (flush && !n && len)) {
            lines_add(h, &out, stream, pre, (size_t)pl);
            lines_add(h, &out, stream, b, len);
            lines_add(h, &out, stream, "\n", 1);
            len = 0;
        }
        memmove(d->obuf[stream], b, len);
        d->olen[stream] = len;
        if (flush && !n)
            break;
    }
    if (out.n)
        emit(h, stream, out.b, out.n);
}

void put_output(mn_head_t *h, int node, int stream, const char *p, size_t n,
                int flush)
{
    if (!h->o.label && h->out)
        mn_out_put(h->out, stream, p, n, node, n);
    else if (!h->o.label)
        write_all(stream, p, n);
    else
        put_labelled(h, &h->nd[node], stream, p, n, flush);
    if (h->o.label && h->out && n) /* back once the lines are out */
        mn_out_put(h->out, stream, NULL, 0, node, n);
}

void on_local(mn_head_t *h, const dv_wire_view_t *v)
{
    int src = (int)mn_get_i64(v, MN_SRC, -1);
    if (src < 0 || src >= h->n)
        return;
    if (v->type == DV_WIRE_OUTPUT) {
        int stream = (int)mn_get_i64(v, MN_STREAM, 0);
        const dv_wire_field_t *f = dv__wire_find(v, MN_DATA);
        if ((stream == 1 || stream == 2) && f)
            put_output(h, src, stream, (const char *)f->data, f->len, 0);
        return;
    }
    if (v->type == DV_WIRE_HEARTBEAT || v->type == DV_WIRE_OUTPUT_ACK)
        return;
    mn_svc_on_wire(h->svc, v);
}

/* ---- failures ---- */

/* Through the writer while it runs (a paused reader of our stderr must
 * not hold up the data port's door), else straight out. */
void mn_head_log(void *arg, const char *line)
{
    mn_head_t *h = arg;
    char text[320];
    int k = snprintf(text, sizeof(text), "drover: run: %s\n", line);
    size_t n = k < 0                      ? 0
               : (size_t)k < sizeof(text) ? (size_t)k
                                          : sizeof(text) - 1;
    pthread_mutex_lock(&h->log_mu);
    if (h->out)
        mn_out_put(h->out, 2, text, n, -1, 0);
    else
        write_all(2, text, n);
    pthread_mutex_unlock(&h->log_mu);
}

void node_failed(mn_head_t *h, int i, const char *why)
{
    struct node *d = &h->nd[i];
    if (d->dead)
        return;
    d->dead = 1;
    if (h->o.keep_going)
        head_say(h, "drover: run: %s: %s (node lost, the job goes on)",
                 d->info.hostname, why);
    else if (!h->failed)
        head_say(h, "drover: run: %s: %s", d->info.hostname, why);
    mn_svc_node_lost(h->svc, i, h->o.keep_going);
    /* The other nodes' requests to it. */
    head_broadcast(h, DV_WIRE_NODE_LOST, i, 0);
    if (h->o.keep_going)
        return;
    h->failed = 1;
    /* The job's processes get the grace period to see the node's processes
     * as killed (pool items failed, joins answered); then the supervision
     * tears the job down. */
    if (!h->teardown_at)
        h->teardown_at = mn_now() + dv__grace_s();
}

/* Read a launcher's stderr: keep its last line; after wire-up pass the
 * agent's own messages on. Returns 1 at end of file. */
int read_launcher(mn_head_t *h, struct node *d, int echo)
{
    for (;;) {
        size_t room = sizeof(d->ebuf) - d->elen - 1;
        ssize_t k = read(d->ch.err_fd, d->ebuf + d->elen, room);
        if (k < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : 1;
        if (k == 0)
            return 1;
        d->elen += (size_t)k;
        d->ebuf[d->elen] = 0;
        char *b = d->ebuf, *nl;
        while ((nl = strchr(b, '\n')) || d->elen == sizeof(d->ebuf) - 1) {
            if (nl)
                *nl = 0;
            if (*b)
                snprintf(d->lasterr, sizeof(d->lasterr), "%.199s", b);
            /* srun's own notes (a task that ended) are not the job's. */
            if (echo && *b && (h->hosts || strncmp(b, "srun: ", 6)))
                head_say(h, "%s", b);
            size_t used = nl ? (size_t)(nl - d->ebuf) + 1 : d->elen;
            memmove(d->ebuf, d->ebuf + used, d->elen - used);
            d->elen -= used;
            d->ebuf[d->elen] = 0;
            b = d->ebuf;
        }
    }
}

/* ---- hello ---- */

int name_why(const char *name, char *why, size_t cap)
{
    if (dv__host_name_valid(name))
        return 0;
    char shown[64];
    size_t k = 0;
    for (; name[k] && k < sizeof(shown) - 1; k++) /* one line, printable */
        shown[k] = name[k] > ' ' && name[k] < 0x7f ? name[k] : '?';
    shown[k] = 0;
    snprintf(why, cap,
             "node name '%s' is not one word of [A-Za-z0-9._:-] (it comes "
             "from DROVER_NODE_NAME or the hostname)",
             shown);
    return -1;
}

/* ---- the hostnames said so far: a hash set of node indexes ---- */

static size_t name_slot(const char *s, size_t cap)
{
    uint64_t x = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        x = (x ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)x & (cap - 1);
}

/* The node whose hello gave this hostname (node 0: its own), or -1. */
static int name_find(mn_head_t *h, const char *host)
{
    if (!h->names)
        return strcmp(h->nd[0].info.hostname, host) ? -1 : 0;
    for (size_t s = name_slot(host, h->names_cap); h->names[s] >= 0;
         s = (s + 1) & (h->names_cap - 1))
        if (!strcmp(h->nd[h->names[s]].info.hostname, host))
            return h->names[s];
    return -1;
}

static int name_add(mn_head_t *h, int i)
{
    if (!h->names) {
        size_t cap = 16;
        while (cap < 2 * (size_t)h->n)
            cap *= 2;
        if (!(h->names = malloc(cap * sizeof(int))))
            return -1;
        memset(h->names, 0xff, cap * sizeof(int)); /* -1 */
        h->names_cap = cap;
        if (i != 0 && name_add(h, 0) < 0)
            return -1;
    }
    size_t s = name_slot(h->nd[i].info.hostname, h->names_cap);
    while (h->names[s] >= 0)
        s = (s + 1) & (h->names_cap - 1);
    h->names[s] = i;
    return 0;
}

int check_hello(mn_head_t *h, const dv_transport_msg_t *m, int *idx, char *why,
                size_t cap)
{
    const dv_wire_view_t *v = &m->view;
    char ver[64] = "?", host[64] = "";
    int i = (int)mn_get_i64(v, MN_INDEX, -1);
    *idx = i;
    dv__wire_get_str(v, MN_VERSION, ver, sizeof(ver), NULL);
    if (i <= 0 || i >= h->n || h->nd[i].hello) {
        snprintf(why, cap, "an agent said hello with a bad index %d", i);
        *idx = -1;
        return -1;
    }
    if (strcmp(ver, DROVER_VERSION)) {
        snprintf(why, cap, "runs drover %s, this is drover %s", ver,
                 DROVER_VERSION);
        return -1;
    }
    if (dv__wire_get_str(v, MN_HOST, host, sizeof(host), NULL) < 0 || !*host) {
        snprintf(why, cap, "no hostname in its hello");
        return -1;
    }
    if (name_why(host, why, cap) < 0)
        return -1;
    int other = name_find(h, host);
    if (other >= 0) {
        snprintf(why, cap, "duplicate hostname '%s' (also node %d)", host,
                 other);
        return -1;
    }
    struct node *d = &h->nd[i];
    snprintf(d->info.hostname, sizeof(d->info.hostname), "%s", host);
    if (name_add(h, i) < 0) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    dv__wire_get_str(v, MN_ADDR, d->info.address, sizeof(d->info.address),
                     NULL);
    d->info.uid = (uint64_t)mn_get_i64(v, MN_UID, 0);
    d->info.cpus =
        h->cpus && h->cpus[i] > 0 ? h->cpus[i] : (int)mn_get_i64(v, MN_CPUS, 1);
    d->info.gpus = (int)mn_get_i64(v, MN_GPUS, 0);
    d->dport = (int)mn_get_i64(v, MN_DPORT, 0);
    memcpy(d->peer, m->peer, m->peer_len);
    d->peer_len = m->peer_len;
    d->hello = 1;
    d->seen = mn_now();
    h->hellos++;
    return 0;
}
