/* The tree's arithmetic and the launch plan each agent reads after its
 * keys (see mn_tree.h). The plan's text:
 *
 *   tree K N WAIT     fanout, nodes, seconds the head waits for hellos
 *   launch TEMPLATE
 *   INDEX HOST        one line per node below the launched one, ascending
 *   end
 */
#define _GNU_SOURCE
#include "multinode/mn_tree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"

#define PLAN_MAX (16u << 20) /* bytes of a plan: ~500k hosts */

int mn_tree_fanout(dv_error_t *err)
{
    const char *v = getenv("DROVER_TREE_FANOUT");
    if (!v || !*v)
        return MN_TREE_FANOUT_DEFAULT;
    char *end = NULL;
    long k = strtol(v, &end, 10);
    if (*end || k < 0 || k > MN_TREE_FANOUT_MAX)
        return dv__errprintf(err, EINVAL,
                             "DROVER_TREE_FANOUT=%.32s: not a number of 0 "
                             "(star) to %d",
                             v, MN_TREE_FANOUT_MAX);
    return (int)k;
}

int mn_tree_parent(int i, int k)
{
    return k <= 0 || i <= 0 ? 0 : (i - 1) / k;
}

void mn_tree_children(int i, int k, int n, int *first, int *end)
{
    long f, e;
    if (k <= 0) {
        f = i == 0 ? 1 : n;
        e = i == 0 ? n : n;
    } else {
        f = (long)k * i + 1;
        e = f + k;
    }
    *first = (int)(f < n ? f : n);
    *end = (int)(e < n ? e : n);
    if (*end < *first)
        *end = *first;
}

int mn_tree_child_toward(int i, int d, int k)
{
    while (d > i && mn_tree_parent(d, k) != i)
        d = mn_tree_parent(d, k);
    return d > i ? d : -1;
}

/* ---- the plan's text ---- */

struct text {
    char *b;
    size_t n, cap;
    int failed;
};

static void add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    for (int tries = 0; !t->failed && tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->n;
        int k = vsnprintf(t->b ? t->b + t->n : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)k < room) {
            t->n += (size_t)k;
            return;
        }
        size_t cap = (t->cap ? 2 * t->cap : 4096) + (size_t)k;
        char *nb = realloc(t->b, cap);
        if (!nb) {
            t->failed = 1;
            return;
        }
        t->b = nb;
        t->cap = cap;
    }
}

char *mn_tree_stdin(const char *keys, int c, int k, int n, double wait_s,
                    const char *tmpl, const char *(*host_of)(void *arg, int i),
                    void *arg, dv_error_t *err)
{
    if (strchr(tmpl, '\n')) {
        dv__errprintf(err, EINVAL, "the launch template holds a newline");
        return NULL;
    }
    struct text t = {NULL, 0, 0, 0};
    add(&t, "%stree %d %d %g\nlaunch %s\n", keys, k, n, wait_s, tmpl);
    /* The subtree's levels are ranges: [a, b] below c, then their
     * children [k*a+1, k*b+k], and so on. */
    long a = c, b = c;
    while (k > 0 && !t.failed) {
        a = (long)k * a + 1;
        b = (long)k * b + k;
        if (a >= n)
            break;
        for (long i = a; i <= b && i < n; i++)
            add(&t, "%ld %s\n", i, host_of(arg, (int)i));
    }
    add(&t, "end\n");
    if (t.failed) {
        free(t.b);
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    return t.b;
}

/* Where the plan in b[0, n) ends (after its line "end"), or 0. */
static size_t plan_end(const char *b, size_t n)
{
    if (n >= 4 && !memcmp(b, "end\n", 4))
        return 4;
    const char *e = memmem(b, n, "\nend\n", 5);
    return e ? (size_t)(e - b) + 5 : 0;
}

/* Read up to the line "end" (or EOF) into a NUL-terminated buffer; what
 * was read past it (the first frames of the pipe) goes to p->rest. */
static char *read_plan(int fd, mn_tree_plan_t *p, dv_error_t *err)
{
    struct text t = {NULL, 0, 0, 0};
    for (;;) {
        if (t.cap - t.n < 4096) {
            size_t cap = t.cap ? 2 * t.cap : 16384;
            char *nb = cap <= PLAN_MAX ? realloc(t.b, cap) : NULL;
            if (!nb) {
                free(t.b);
                dv__errprintf(err, E2BIG, "tree plan on stdin: too long");
                return NULL;
            }
            t.b = nb;
            t.cap = cap;
        }
        ssize_t r = read(fd, t.b + t.n, t.cap - t.n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(t.b);
            dv__errsys(err, "tree plan on stdin");
            return NULL;
        }
        t.n += (size_t)r;
        size_t end = plan_end(t.b, t.n);
        if (r == 0 || end) {
            size_t rest = end ? t.n - end : 0;
            if (rest && !(p->rest = malloc(rest))) {
                free(t.b);
                dv__errprintf(err, ENOMEM, "out of memory");
                return NULL;
            }
            if (rest)
                memcpy(p->rest, t.b + end, rest);
            p->rest_len = rest;
            t.b[end ? end : t.n] = 0;
            return t.b;
        }
    }
}

static int plan_line(mn_tree_plan_t *p, char *line, int *last)
{
    char *sp = strchr(line, ' '), *end = NULL;
    long i = strtol(line, &end, 10);
    if (!sp || end != sp || i <= *last || i >= p->n || !sp[1] ||
        strchr(sp + 1, ' '))
        return -1;
    struct mn_tree_host *nh =
        realloc(p->h, (size_t)(p->count + 1) * sizeof(*nh));
    if (!nh)
        return -1;
    p->h = nh;
    if (!(p->h[p->count].host = strdup(sp + 1)))
        return -1;
    p->h[p->count++].index = (int)i;
    *last = (int)i;
    return 0;
}

int mn_tree_plan_read(int fd, int self, mn_tree_plan_t *p, dv_error_t *err)
{
    memset(p, 0, sizeof(*p));
    p->self = self;
    char *text = read_plan(fd, p, err);
    if (!text)
        return -1;
    int ok = 0, state = 0, last = self, ended = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = 0;
        if (state == 0)
            ok =
                sscanf(line, "tree %d %d %lf", &p->k, &p->n, &p->wait_s) == 3 &&
                p->k >= 0 && p->k <= MN_TREE_FANOUT_MAX && p->n > self &&
                p->wait_s > 0 && p->wait_s < 1e6;
        else if (state == 1)
            ok = !strncmp(line, "launch ", 7) && (p->tmpl = strdup(line + 7));
        else if ((ended = !strcmp(line, "end")))
            break;
        else
            ok = plan_line(p, line, &last) == 0;
        state += state < 2;
        if (!ok)
            break;
    }
    free(text);
    if (ok && ended)
        return 0;
    mn_tree_plan_free(p);
    return dv__errprintf(err, EPROTO, "bad tree plan on stdin");
}

void mn_tree_plan_free(mn_tree_plan_t *p)
{
    for (int i = 0; i < p->count; i++)
        free(p->h[i].host);
    free(p->h);
    free(p->tmpl);
    free(p->rest);
    memset(p, 0, sizeof(*p));
}

const char *mn_tree_plan_host(const mn_tree_plan_t *p, int i)
{
    int lo = 0, hi = p->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (p->h[mid].index == i)
            return p->h[mid].host;
        if (p->h[mid].index < i)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}
