/* An agent's children in the tree (see mn_tree.h): their launches, their
 * joins over the agent's tree listener, the head's broadcasts passed on
 * to them, and their launchers' stderr passed on to the agent's. */
#define _GNU_SOURCE
#include "multinode/mn_tree.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "multinode/mn.h"

struct kid {
    int index;
    dv_launch_child_t ch; /* pid 0: not started */
    uint8_t peer[256];    /* its join's routing id */
    size_t peer_len;
    int joined;
    size_t sent; /* broadcasts passed on to it */
    char ebuf[512];
    size_t elen;
    char lasterr[200];
};

struct bmsg {
    void *data;
    size_t len;
};

struct mn_kids {
    const mn_tree_plan_t *plan;
    dv_transport_t *tp;
    void *router;
    char endpoint[128];
    struct kid *kid;
    int nkid;
    struct bmsg *log; /* every broadcast so far, in order */
    size_t nlog;
    mn_kids_lost_f lost;
    void *arg;
};

static const char *plan_host(void *arg, int i)
{
    const char *h = mn_tree_plan_host(arg, i);
    return h ? h : "-";
}

/* The child's words: the agent's, its index, and where its parent is. */
static char **child_cmd(char *const *cmd, int index, const char *parent,
                        char *num, size_t cap)
{
    int n = 0;
    while (cmd[n])
        n++;
    char **w = calloc((size_t)n + 7, sizeof(char *));
    if (!w)
        return NULL;
    memcpy(w, cmd, (size_t)n * sizeof(char *));
    snprintf(num, cap, "%d", index);
    w[n++] = "--tree";
    w[n++] = "--parent";
    w[n++] = (char *)parent;
    w[n++] = "--index";
    w[n++] = num;
    return w;
}

static void launch(mn_kids_t *k, struct kid *c, char *const *cmd,
                   const char *keys)
{
    const mn_tree_plan_t *p = k->plan;
    char num[16];
    dv_error_t e = {0};
    const char *host = mn_tree_plan_host(p, c->index);
    char **words = child_cmd(cmd, c->index, k->endpoint, num, sizeof(num));
    char *in = words ? mn_tree_stdin(keys, c->index, p->k, p->n, p->wait_s,
                                     p->tmpl, plan_host, (void *)p, &e)
                     : NULL;
    char **argv =
        in && host ? dv__launch_expand(p->tmpl, host, words, &e) : NULL;
    if (!argv || dv__launch_spawn(argv, in, -1, &c->ch, &e) < 0) {
        c->ch.pid = 0;
        c->ch.err_fd = -1;
    }
    dv__launch_argv_free(argv);
    free(in);
    free(words);
    if (!c->ch.pid) {
        char why[300];
        snprintf(why, sizeof(why), "%s",
                 e.text[0] ? e.text
                 : host    ? "out of memory"
                           : "no host");
        k->lost(k->arg, c->index, why);
    }
}

mn_kids_t *mn_kids_start(const mn_tree_plan_t *plan, dv_transport_t *tp,
                         const char *addr, char *const *cmd, const char *keys,
                         mn_kids_lost_f lost, void *arg, dv_error_t *err)
{
    mn_kids_t *k = calloc(1, sizeof(*k));
    int first, end;
    mn_tree_children(plan->self, plan->k, plan->n, &first, &end);
    if (!k || !(k->kid = calloc((size_t)(end - first) + 1, sizeof(*k->kid)))) {
        free(k);
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    k->plan = plan;
    k->tp = tp;
    k->lost = lost;
    k->arg = arg;
    char ep[96];
    snprintf(ep, sizeof(ep), "tcp://%s:*", addr);
    if (end > first && !(k->router = dv__transport_listen(
                             tp, ep, k->endpoint, sizeof(k->endpoint), err))) {
        mn_kids_destroy(&k);
        return NULL;
    }
    for (int i = first; i < end; i++) {
        struct kid *c = &k->kid[k->nkid++];
        c->index = i;
        c->ch.err_fd = -1;
        launch(k, c, cmd, keys);
    }
    return k;
}

int mn_kids_poll_items(mn_kids_t *k, zmq_pollitem_t *it, int cap)
{
    int n = 0;
    if (k->router && n < cap)
        it[n++] = (zmq_pollitem_t){k->router, 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < k->nkid && n < cap; i++)
        if (k->kid[i].ch.err_fd >= 0)
            it[n++] =
                (zmq_pollitem_t){NULL, k->kid[i].ch.err_fd, ZMQ_POLLIN, 0};
    return n;
}

static int send_copy(mn_kids_t *k, struct kid *c, const struct bmsg *m)
{
    dv_wire_buf_t b = {malloc(m->len), m->len, m->len, 0};
    if (!b.data)
        return -1;
    memcpy(b.data, m->data, m->len);
    return dv__transport_send(k->router, c->peer, c->peer_len, &b, NULL);
}

static void catch_up(mn_kids_t *k, struct kid *c)
{
    while (c->joined && c->sent < k->nlog &&
           send_copy(k, c, &k->log[c->sent]) == 0)
        c->sent++;
}

static void on_join(mn_kids_t *k)
{
    dv_transport_msg_t m;
    for (int n = 0; n < 64; n++) {
        if (dv__transport_recv(k->router, &m, 0, NULL) < 0)
            return;
        int i = (int)mn_get_i64(&m.view, MN_INDEX, -1);
        for (int j = 0; m.view.type == DV_WIRE_TREE_JOIN && j < k->nkid; j++) {
            struct kid *c = &k->kid[j];
            if (c->index != i || c->joined)
                continue;
            memcpy(c->peer, m.peer, m.peer_len);
            c->peer_len = m.peer_len;
            c->joined = 1;
            catch_up(k, c);
        }
        dv__transport_msg_close(&m);
    }
}

/* Whole lines go on to our stderr; the last one is kept for the report.
 * Returns 1 at end of file. */
static int on_stderr(struct kid *c)
{
    for (;;) {
        ssize_t r = read(c->ch.err_fd, c->ebuf + c->elen,
                         sizeof(c->ebuf) - c->elen - 1);
        if (r < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : 1;
        if (r == 0)
            return 1;
        c->elen += (size_t)r;
        size_t off = 0;
        for (;;) {
            char *b = c->ebuf + off;
            char *nl = memchr(b, '\n', c->elen - off);
            size_t len = nl ? (size_t)(nl - b) : c->elen;
            if (!nl && (off || c->elen < sizeof(c->ebuf) - 1))
                break;
            if (len)
                snprintf(c->lasterr, sizeof(c->lasterr), "%.*s", (int)len, b);
            /* A line nobody reads (our stderr gone) is lost, nothing more. */
            if (write(2, b, len) == (ssize_t)len && write(2, "\n", 1) == 1)
                (void)0;
            off += len + (nl != NULL);
        }
        c->elen -= off;
        memmove(c->ebuf, c->ebuf + off, c->elen);
    }
}

void mn_kids_on_poll(mn_kids_t *k, zmq_pollitem_t *it, int n)
{
    for (int j = 0; j < n; j++) {
        if (it[j].socket) {
            on_join(k); /* ZMQ_FD edges: read whenever we are here */
            continue;
        }
        if (!it[j].revents)
            continue;
        for (int i = 0; i < k->nkid; i++) {
            struct kid *c = &k->kid[i];
            if (c->ch.err_fd != it[j].fd || !on_stderr(c))
                continue;
            close(c->ch.err_fd);
            c->ch.err_fd = -1;
            char why[256];
            snprintf(why, sizeof(why), "%s",
                     c->lasterr[0] ? c->lasterr : "the launch command exited");
            k->lost(k->arg, c->index, why);
        }
    }
}

int mn_kids_forward(mn_kids_t *k, const void *msg, size_t len)
{
    struct bmsg *nl = realloc(k->log, (k->nlog + 1) * sizeof(*nl));
    if (!nl)
        return -1;
    k->log = nl;
    if (!(nl[k->nlog].data = malloc(len ? len : 1)))
        return -1;
    memcpy(nl[k->nlog].data, msg, len);
    nl[k->nlog++].len = len;
    for (int i = 0; i < k->nkid; i++)
        catch_up(k, &k->kid[i]);
    return 0;
}

int mn_kids_left(const mn_kids_t *k)
{
    int n = 0;
    for (int i = 0; k && i < k->nkid; i++)
        n += k->kid[i].ch.err_fd >= 0;
    return n;
}

void mn_kids_kill(mn_kids_t *k)
{
    for (int i = 0; k && i < k->nkid; i++)
        if (k->kid[i].ch.pid > 0)
            kill(k->kid[i].ch.pid, SIGTERM);
    double end = mn_now() + 2;
    for (int i = 0; k && i < k->nkid; i++) {
        pid_t p = k->kid[i].ch.pid;
        while (p > 0 && waitpid(p, NULL, WNOHANG) == 0 && mn_now() < end) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        if (p > 0 && waitpid(p, NULL, WNOHANG) == 0) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
        }
        k->kid[i].ch.pid = 0;
    }
}

void mn_kids_destroy(mn_kids_t **kp)
{
    mn_kids_t *k = *kp;
    if (!k)
        return;
    *kp = NULL;
    for (int i = 0; i < k->nkid; i++)
        if (k->kid[i].ch.err_fd >= 0)
            close(k->kid[i].ch.err_fd);
    for (size_t i = 0; i < k->nlog; i++)
        free(k->log[i].data);
    free(k->log);
    if (k->router) {
        int linger = 1000; /* the KILL passed on goes out first */
        zmq_setsockopt(k->router, ZMQ_LINGER, &linger, sizeof(linger));
        dv__transport_close(k->tp, &k->router);
    }
    free(k->kid);
    free(k);
}
