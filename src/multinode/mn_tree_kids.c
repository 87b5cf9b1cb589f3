/* An agent's children in the tree (see mn_tree.h): their launches, the
 * head's broadcasts passed on to them through their stdin, and their
 * launchers' stderr passed on to the agent's. */
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
    dv_launch_child_t ch; /* pid 0: not started; ch.in_fd -1: stdin gone */
    size_t sent;          /* broadcasts passed on to it */
    size_t part;          /* bytes of the next one written already */
    char ebuf[512];
    size_t elen;
    char lasterr[200];
};

struct bmsg {
    uint8_t *frame; /* mn_tree_frame() */
    size_t len;
};

struct mn_kids {
    const mn_tree_plan_t *plan;
    struct kid *kid;
    int nkid;
    struct bmsg *log; /* every broadcast so far, in order, as frames */
    size_t nlog;
    mn_kids_lost_f lost;
    void *arg;
};

static const char *plan_host(void *arg, int i)
{
    const char *h = mn_tree_plan_host(arg, i);
    return h ? h : "-";
}

/* The child's words: the agent's and its index. */
static char **child_cmd(char *const *cmd, int index, char *num, size_t cap)
{
    int n = 0;
    while (cmd[n])
        n++;
    char **w = calloc((size_t)n + 4, sizeof(char *));
    if (!w)
        return NULL;
    memcpy(w, cmd, (size_t)n * sizeof(char *));
    snprintf(num, cap, "%d", index);
    w[n++] = "--tree";
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
    char **words = child_cmd(cmd, c->index, num, sizeof(num));
    char *in = words ? mn_tree_stdin(keys, c->index, p->k, p->n, p->wait_s,
                                     p->tmpl, plan_host, (void *)p, &e)
                     : NULL;
    char **argv =
        in && host ? dv__launch_expand(p->tmpl, host, words, &e) : NULL;
    if (!argv || dv__launch_spawn_open(argv, in, -1, &c->ch, &e) < 0) {
        c->ch.pid = 0;
        c->ch.err_fd = c->ch.in_fd = -1;
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

mn_kids_t *mn_kids_start(const mn_tree_plan_t *plan, char *const *cmd,
                         const char *keys, mn_kids_lost_f lost, void *arg,
                         dv_error_t *err)
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
    k->lost = lost;
    k->arg = arg;
    for (int i = first; i < end; i++) {
        struct kid *c = &k->kid[k->nkid++];
        c->index = i;
        c->ch.err_fd = c->ch.in_fd = -1;
        launch(k, c, cmd, keys);
    }
    return k;
}

/* What its stdin takes now of the broadcasts it has not had. A child
 * whose stdin is gone (EPIPE) gets no more; its stderr tells the rest. */
static void catch_up(mn_kids_t *k, struct kid *c)
{
    while (c->ch.in_fd >= 0 && c->sent < k->nlog) {
        const struct bmsg *m = &k->log[c->sent];
        ssize_t r = write(c->ch.in_fd, m->frame + c->part, m->len - c->part);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0) {
            close(c->ch.in_fd);
            c->ch.in_fd = -1;
            return;
        }
        c->part += (size_t)r;
        if (c->part == m->len) {
            c->sent++;
            c->part = 0;
        }
    }
}

int mn_kids_poll_items(mn_kids_t *k, zmq_pollitem_t *it, int cap)
{
    int n = 0;
    for (int i = 0; i < k->nkid && n < cap; i++) {
        struct kid *c = &k->kid[i];
        if (c->ch.err_fd >= 0)
            it[n++] = (zmq_pollitem_t){NULL, c->ch.err_fd, ZMQ_POLLIN, 0};
        if (c->ch.in_fd >= 0 && c->sent < k->nlog && n < cap)
            it[n++] = (zmq_pollitem_t){NULL, c->ch.in_fd, ZMQ_POLLOUT, 0};
    }
    return n;
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
        if (!(it[j].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
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
    for (int i = 0; i < k->nkid; i++) /* stdin that has room again */
        catch_up(k, &k->kid[i]);
}

int mn_kids_forward(mn_kids_t *k, const void *msg, size_t len)
{
    struct bmsg *nl = realloc(k->log, (k->nlog + 1) * sizeof(*nl));
    if (!nl)
        return -1;
    k->log = nl;
    if (!(nl[k->nlog].frame = mn_tree_frame(msg, len, &nl[k->nlog].len)))
        return -1;
    k->nlog++;
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
    for (int i = 0; i < k->nkid; i++) {
        if (k->kid[i].ch.err_fd >= 0)
            close(k->kid[i].ch.err_fd);
        if (k->kid[i].ch.in_fd >= 0)
            close(k->kid[i].ch.in_fd);
    }
    for (size_t i = 0; i < k->nlog; i++)
        free(k->log[i].frame);
    free(k->log);
    free(k->kid);
    free(k);
}
