/* The tree of a job's agents (src/multinode/mn_tree.c): parents,
 * children and routing by index, the fanout from the environment, and the
 * launch plan that the launch of a subtree reads after its keys, and the
 * frames of the broadcasts that follow it on the same stdin. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "multinode/mn_tree.h"

/* Every node but the root has one parent, and is among its children. */
static void test_shape(void)
{
    for (int k = 0; k <= 5; k++) {
        int n = 200, seen[200] = {0};
        for (int i = 0; i < n; i++) {
            int f, e;
            mn_tree_children(i, k, n, &f, &e);
            CHECK(f <= e && e <= n);
            for (int c = f; c < e; c++) {
                CHECK(mn_tree_parent(c, k) == i);
                seen[c]++;
            }
            if (k > 0)
                CHECK(e - f <= k);
        }
        for (int i = 1; i < n; i++)
            CHECK(seen[i] == 1);
        CHECK(seen[0] == 0);
    }
    int f, e;
    mn_tree_children(0, 16, 1024, &f, &e);
    CHECK(f == 1 && e == 17);
    mn_tree_children(63, 16, 1024, &f, &e); /* the last: 1009..1023 */
    CHECK(f == 1009 && e == 1024);
    mn_tree_children(64, 16, 1024, &f, &e);
    CHECK(f == e);
}

static void test_toward(void)
{
    /* k = 2: 0 -> 1, 2; 1 -> 3, 4; 3 -> 7, 8; 4 -> 9, 10. */
    CHECK(mn_tree_child_toward(0, 9, 2) == 1);
    CHECK(mn_tree_child_toward(1, 9, 2) == 4);
    CHECK(mn_tree_child_toward(4, 9, 2) == 9);
    CHECK(mn_tree_child_toward(2, 9, 2) == -1);
    CHECK(mn_tree_child_toward(9, 9, 2) == -1);
    CHECK(mn_tree_child_toward(0, 5, 0) == 5); /* star */
    CHECK(mn_tree_child_toward(3, 5, 0) == -1);
}

static void test_fanout(void)
{
    dv_error_t err;
    unsetenv("DROVER_TREE_FANOUT");
    CHECK(mn_tree_fanout(&err) == MN_TREE_FANOUT_DEFAULT);
    setenv("DROVER_TREE_FANOUT", "0", 1);
    CHECK(mn_tree_fanout(&err) == 0);
    setenv("DROVER_TREE_FANOUT", "3", 1);
    CHECK(mn_tree_fanout(&err) == 3);
    const char *bad[] = {"x", "-1", "2k", "100000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("DROVER_TREE_FANOUT", bad[i], 1);
        CHECK(mn_tree_fanout(&err) == -1);
        CHECK(strstr(err.text, "DROVER_TREE_FANOUT") != NULL);
    }
    unsetenv("DROVER_TREE_FANOUT");
}

static const char *name(void *arg, int i)
{
    static char b[4][32];
    static int next;
    (void)arg;
    char *s = b[next++ % 4];
    snprintf(s, 32, "h%d", i);
    return s;
}

/* Text to a pipe, read back as the launched node reads it. */
static int plan_of(const char *text, int self, mn_tree_plan_t *p,
                   dv_error_t *err)
{
    int fd[2];
    if (pipe(fd) < 0)
        return -1;
    size_t l = strlen(text);
    int ok = write(fd[1], text, l) == (ssize_t)l;
    close(fd[1]);
    int r = ok ? mn_tree_plan_read(fd[0], self, p, err) : -1;
    close(fd[0]);
    return r;
}

/* The plan of node 1 (k = 2, n = 12) names its subtree: 3, 4, 7..10. */
static void test_plan(void)
{
    dv_error_t err;
    char *t = mn_tree_stdin("KEYS\n", 1, 2, 12, 30, "env X={host} {cmd}", name,
                            NULL, &err);
    CHECK(t &&
          !strncmp(t, "KEYS\ntree 2 12 30\nlaunch env X={host} {cmd}\n", 43));
    /* The keys line is the agent's to read first. */
    mn_tree_plan_t p;
    CHECK(t && plan_of(t + 5, 1, &p, &err) == 0);
    CHECK(p.k == 2 && p.n == 12 && p.wait_s == 30 && p.count == 6);
    CHECK(!strcmp(p.tmpl, "env X={host} {cmd}"));
    int want[] = {3, 4, 7, 8, 9, 10};
    for (int i = 0; i < 6 && i < p.count; i++)
        CHECK(p.h[i].index == want[i]);
    CHECK(!strcmp(mn_tree_plan_host(&p, 9), "h9"));
    CHECK(mn_tree_plan_host(&p, 5) == NULL);
    CHECK(mn_tree_plan_host(&p, 11) == NULL);
    mn_tree_plan_free(&p);
    free(t);
    /* A leaf's plan is empty. */
    t = mn_tree_stdin("", 7, 2, 12, 30, "{cmd}", name, NULL, &err);
    CHECK(t && plan_of(t, 7, &p, &err) == 0 && p.count == 0);
    mn_tree_plan_free(&p);
    free(t);
    CHECK(mn_tree_stdin("", 1, 2, 12, 30, "a\nb {cmd}", name, NULL, &err) ==
          NULL);
}

static void test_bad_plans(void)
{
    const char *bad[] = {
        "",
        "tree 2 12 30\n",                                /* no end */
        "tree 2 12 30\nlaunch {cmd}\n3 h3\n",            /* no end */
        "tree 2 12\nlaunch {cmd}\nend\n",                /* no wait */
        "tree 2 1 30\nlaunch {cmd}\nend\n",              /* n <= self */
        "tree 2 12 30\nlaunch {cmd}\n3 h3\n3 h3\nend\n", /* not ascending */
        "tree 2 12 30\nlaunch {cmd}\n12 h12\nend\n",     /* past n */
        "tree 2 12 30\nlaunch {cmd}\n3 a b\nend\n",      /* two words */
        "tree 2 12 30\nlaunch {cmd}\n1 h1\nend\n",       /* itself */
        "tree 2 12 30\nrun {cmd}\nend\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mn_tree_plan_t p;
        dv_error_t err;
        CHECK(plan_of(bad[i], 1, &p, &err) == -1);
        CHECK(strstr(err.text, "tree plan") != NULL);
    }
}

/* Frames read back whole, whatever pieces the pipe gives them in; the
 * plan's rest (frames read with the plan) comes first. */
static void test_pipe(void)
{
    int fd[2];
    CHECK(pipe(fd) == 0);
    size_t l1, l2, l3;
    uint8_t *f1 = mn_tree_frame("hello", 5, &l1);
    uint8_t *f2 = mn_tree_frame("", 0, &l2);
    static char big[200000];
    memset(big, 'x', sizeof(big));
    uint8_t *f3 = mn_tree_frame(big, sizeof(big), &l3);
    CHECK(f1 && f2 && f3 && l1 == 9 && l2 == 4 && l3 == sizeof(big) + 4);
    /* As a plan followed by the first frames arrives in one read. */
    char text[64];
    int tl = snprintf(text, sizeof(text), "tree 2 12 30\nlaunch {cmd}\nend\n");
    uint8_t first[64];
    memcpy(first, text, (size_t)tl);
    memcpy(first + tl, f1, l1);
    memcpy(first + tl + l1, f2, 2); /* half of the length of f2 */
    CHECK(write(fd[1], first, (size_t)tl + l1 + 2) == (ssize_t)(tl + l1 + 2));
    mn_tree_plan_t p;
    dv_error_t err;
    CHECK(mn_tree_plan_read(fd[0], 7, &p, &err) == 0 && p.count == 0);
    CHECK(p.rest_len == l1 + 2);
    mn_tree_in_t in;
    CHECK(mn_tree_in_init(&in, fd[0], p.rest, p.rest_len) == 0);
    mn_tree_plan_free(&p);
    const uint8_t *m;
    size_t n;
    CHECK(mn_tree_in_next(&in, &m, &n) == 1 && n == 5 &&
          !memcmp(m, "hello", 5));
    CHECK(mn_tree_in_next(&in, &m, &n) == 0);
    CHECK(write(fd[1], f2 + 2, 2) == 2);
    mn_tree_in_read(&in);
    CHECK(mn_tree_in_next(&in, &m, &n) == 1 && n == 0);
    /* A frame larger than the pipe's buffer, in two writes. */
    fcntl(fd[1], F_SETFL, O_NONBLOCK);
    size_t off = 0;
    while (off < l3) {
        ssize_t w = write(fd[1], f3 + off, l3 - off);
        if (w > 0)
            off += (size_t)w;
        mn_tree_in_read(&in);
        CHECK(off == l3 || mn_tree_in_next(&in, &m, &n) == 0);
    }
    mn_tree_in_read(&in);
    CHECK(mn_tree_in_next(&in, &m, &n) == 1 && n == sizeof(big) &&
          m[0] == 'x' && m[n - 1] == 'x');
    /* A length no parent writes: the pipe is given up. */
    uint8_t bad[4] = {0xff, 0xff, 0xff, 0x7f};
    CHECK(write(fd[1], bad, 4) == 4);
    mn_tree_in_read(&in);
    CHECK(mn_tree_in_next(&in, &m, &n) == 0 && in.fd == -1);
    mn_tree_in_free(&in);
    /* EOF closes it. */
    int g[2];
    CHECK(pipe(g) == 0);
    CHECK(mn_tree_in_init(&in, g[0], NULL, 0) == 0);
    close(g[1]);
    mn_tree_in_read(&in);
    CHECK(in.fd == -1 && mn_tree_in_next(&in, &m, &n) == 0);
    mn_tree_in_free(&in);
    close(g[0]);
    close(fd[0]);
    close(fd[1]);
    free(f1);
    free(f2);
    free(f3);
}

int main(void)
{
    test_shape();
    test_toward();
    test_fanout();
    test_plan();
    test_bad_plans();
    test_pipe();
    return CHECK_DONE();
}
