/* Wire-up of a multi-node job: keys, the head's CURVE listener, one launch
 * per other node (hostfile template or srun), hellos checked (version,
 * index, duplicate hostnames), then the node table for everyone. A node
 * whose launcher exits first, or that says nothing within the wire-up
 * timeout, is named with its launcher's last error line. */
#define _GNU_SOURCE
#include "multinode/mn_env.h"
#include "multinode/mn_head.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"
#include "telemetry/telemetry.h"

/* This machine as node 0. */
static void self_info(mn_head_t *h)
{
    dv_node_info_t *m = &h->nd[0].info;
    const char *name = getenv(DV_ENV_NODE_NAME);
    if (name && *name)
        snprintf(m->hostname, sizeof(m->hostname), "%s", name);
    else if (gethostname(m->hostname, sizeof(m->hostname)) < 0)
        snprintf(m->hostname, sizeof(m->hostname), "localhost");
    m->hostname[sizeof(m->hostname) - 1] = 0;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        c = CPU_COUNT(&set);
    m->cpus = c > 0 ? (int)c : 1;
    if (h->cpus && h->cpus[0] > 0) /* the host file's or Slurm's */
        m->cpus = h->cpus[0];
    m->gpus = dv_telem_count_gpus(NULL, NULL, 0); /* as the agents do */
    m->uid = ((uint64_t)getpid() << 32) ^ (uint64_t)(mn_now() * 1e6);
    h->nd[0].hello = 1;
}

/* The agent's command: this very binary. */
static char **agent_cmd(mn_head_t *h, int index, char *self, size_t cap)
{
    static char idx[16];
    ssize_t k = readlink("/proc/self/exe", self, cap - 1);
    if (k <= 0)
        return NULL;
    self[k] = 0;
    snprintf(idx, sizeof(idx), "%d", index);
    char **cmd = calloc(14, sizeof(char *));
    if (!cmd)
        return NULL;
    int n = 0;
    cmd[n++] = self;
    cmd[n++] = "agent";
    cmd[n++] = "--head";
    cmd[n++] = h->endpoint;
    if (h->k > 0 && index >= 0)
        cmd[n++] = "--tree"; /* its launch plan follows the keys */
    cmd[n++] = "--job";
    cmd[n++] = (char *)dv__job_id();
    if (index >= 0) {
        cmd[n++] = "--index";
        cmd[n++] = idx;
    }
    if (h->o.network_prefix) {
        cmd[n++] = "--network-prefix";
        cmd[n++] = (char *)h->o.network_prefix;
    }
    return cmd;
}

static int wireup_launcher(mn_head_t *h, int i, dv_error_t *err);
static int wireup_message(mn_head_t *h, dv_error_t *err);
static int wireup_tick(mn_head_t *h, dv_error_t *err);
static int stop_pending(void);

/* Between launches: a launcher that already failed (its stderr closed
 * before its hello) ends the launch at once, before hundreds more are
 * started. The launched stderrs are in an epoll set, so each check costs
 * only what became readable. */
static int launched_ok(mn_head_t *h, int ep, int i, dv_error_t *err)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, h->nd[i].ch.err_fd, &ev) < 0)
        return 0;
    struct epoll_event got[16];
    int k = epoll_wait(ep, got, 16, 0);
    zmq_pollitem_t it = {h->router, 0, ZMQ_POLLIN, 0};
    while (k > 0 && zmq_poll(&it, 1, 0) > 0) /* hellos first */
        if (wireup_message(h, err) < 0)
            return -1;
    for (int j = 0; j < k; j++) { /* a closed fd leaves the set by itself */
        int n = (int)got[j].data.u32;
        if (h->nd[n].ch.err_fd >= 0 && wireup_launcher(h, n, err) < 0)
            return -1;
    }
    return 0;
}

static const char *host_at(void *arg, int i)
{
    return ((mn_head_t *)arg)->hosts[i];
}

/* The launch's stdin: the keys, and in a tree the plan of its subtree. */
static char *launch_stdin(mn_head_t *h, int i, const char *keys,
                          const char *tmpl, dv_error_t *err)
{
    if (h->k > 0)
        return mn_tree_stdin(keys, i, h->k, h->n, h->o.wireup_timeout_s, tmpl,
                             host_at, h, err);
    char *t = strdup(keys);
    if (!t)
        dv__errprintf(err, ENOMEM, "out of memory");
    return t;
}

/* The head launches its children in the tree (star: every agent); each
 * agent launches its own. */
static int launch_hostfile(mn_head_t *h, const char *keys, dv_error_t *err)
{
    char self[PATH_MAX];
    const char *tmpl =
        h->o.launch_cmd ? h->o.launch_cmd : DV_LAUNCH_DEFAULT_TEMPLATE;
    int ep = epoll_create1(EPOLL_CLOEXEC), r = 0, first, end;
    mn_tree_children(0, h->k, h->n, &first, &end);
    for (int i = first; i < end && r == 0; i++) {
        char **cmd = agent_cmd(h, i, self, sizeof(self));
        if (!cmd) {
            r = dv__errsys(err, "cannot find the drover binary");
            break;
        }
        char **argv = dv__launch_expand(tmpl, h->hosts[i], cmd, err);
        free(cmd);
        if (!argv) {
            r = -1;
            break;
        }
        dv_error_t e;
        char *in = launch_stdin(h, i, keys, tmpl, err);
        if (!in) {
            dv__launch_argv_free(argv);
            r = -1;
            break;
        }
        r = dv__launch_spawn(argv, in, -1, &h->nd[i].ch, &e);
        explicit_bzero(in, strlen(in));
        free(in);
        dv__launch_argv_free(argv);
        if (r < 0)
            r = dv__errprintf(err, errno, "%s: launch failed: %s", h->hosts[i],
                              e.text);
        else
            r = wireup_tick(h, err);
        if (r == 0)
            r = launched_ok(h, ep, i, err);
    }
    if (ep >= 0)
        close(ep);
    /* A signal to the whole process group (Ctrl-C) ends the launchers too:
     * their failure is the interruption's. */
    if (r < 0 && stop_pending())
        r = dv__errprintf(err, EINTR, "interrupted during the launch");
    return r;
}

static int launch_slurm(mn_head_t *h, const char *keys, dv_error_t *err)
{
    char self[PATH_MAX], nodes[64], me[256] = "";
    const char *slurmd = getenv("SLURMD_NODENAME"); /* Slurm's name of it */
    if (slurmd && *slurmd)
        snprintf(me, sizeof(me), "%s", slurmd);
    else
        gethostname(me, sizeof(me) - 1);
    char **cmd = agent_cmd(h, -1, self, sizeof(self));
    if (!cmd)
        return dv__errsys(err, "cannot find the drover binary");
    char *argv[24];
    dv_error_t e;
    int r = dv__srun_argv(h->n - 1, me, dv__srun_has_overlap(), cmd, nodes,
                          argv, 24);
    if (r < 0)
        r = dv__errsys(&e, "srun: command line");
    else
        r = dv__launch_spawn(argv, keys, -1, &h->nd[1].ch, &e);
    free(cmd);
    if (r < 0)
        return dv__errprintf(err, errno, "srun: launch failed: %s", e.text);
    return 0;
}

/* Names of the nodes still missing, for the timeout message. */
static int missing(mn_head_t *h, char *out, size_t cap)
{
    int k = 0;
    out[0] = 0;
    for (int i = 1; i < h->n; i++)
        if (!h->nd[i].hello) {
            size_t l = strlen(out);
            snprintf(out + l, cap - l, "%s%s", k ? ", " : "",
                     h->hosts ? h->hosts[i] : h->nd[i].info.hostname);
            k++;
        }
    return k;
}

static const char *host_of(mn_head_t *h, int i)
{
    return h->hosts ? h->hosts[i] : "srun";
}

/* One message during wire-up. A good hello is answered at once (a
 * heartbeat), so that its agent knows the head is there however long the
 * others take. Returns -1 with err when the job cannot go on. */
static int wireup_message(mn_head_t *h, dv_error_t *err)
{
    dv_transport_msg_t m;
    if (dv__transport_recv(h->router, &m, 0, NULL) < 0)
        return 0;
    int r = 0;
    if (m.view.type == DV_WIRE_HELLO) {
        char why[200];
        int i;
        if (check_hello(h, &m, &i, why, sizeof(why)) < 0)
            r = dv__errprintf(err, EPROTO, "%s: %s",
                              i > 0 ? host_of(h, i) : "agent", why);
        else
            send_simple(h, i, DV_WIRE_HEARTBEAT, 0);
    } else if (m.view.type == DV_WIRE_TREE_LOST && node_of(h, &m) > 0) {
        /* A launch in the tree ended before its agent said hello. */
        int p = node_of(h, &m), c = (int)mn_get_i64(&m.view, MN_INDEX, -1);
        char why[200] = "the launch command exited";
        dv__wire_get_str(&m.view, MN_TEXT, why, sizeof(why), NULL);
        if (c > 0 && c < h->n && mn_tree_parent(c, h->k) == p &&
            !h->nd[c].hello)
            r = dv__errprintf(err, EHOSTDOWN, "%s: launch failed: %s",
                              host_of(h, c), why);
    }
    dv__transport_msg_close(&m);
    return r;
}

/* Heartbeats to the agents that said hello, every MN_HEARTBEAT_S while
 * they wait for the node table. */
static void wireup_beat(mn_head_t *h)
{
    double now = mn_now();
    if (now < h->next_beat)
        return;
    h->next_beat = now + MN_HEARTBEAT_S;
    for (int i = 1; i < h->n; i++)
        if (h->nd[i].hello)
            send_simple(h, i, DV_WIRE_HEARTBEAT, 0);
}

static int stop_pending(void)
{
    sigset_t pend;
    return sigpending(&pend) == 0 &&
           (sigismember(&pend, SIGINT) || sigismember(&pend, SIGTERM) ||
            sigismember(&pend, SIGHUP));
}

/* Between two launches: a stop signal (blocked, so pending) ends the
 * wire-up at once; the agents already up are answered. */
static int wireup_tick(mn_head_t *h, dv_error_t *err)
{
    if (stop_pending())
        return dv__errprintf(err, EINTR, "interrupted during the launch");
    zmq_pollitem_t it = {h->router, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&it, 1, 0) > 0)
        if (wireup_message(h, err) < 0)
            return -1;
    wireup_beat(h);
    return 0;
}

/* A launcher's stderr: EOF before its hello is a failed launch. */
static int wireup_launcher(mn_head_t *h, int i, dv_error_t *err)
{
    struct node *d = &h->nd[i];
    if (!read_launcher(h, d, 0))
        return 0;
    close(d->ch.err_fd);
    d->ch.err_fd = -1;
    if (h->hellos == h->n - 1)
        return 0;
    const char *who = h->hosts ? host_of(h, i) : "srun";
    if (!h->hosts) {
        char miss[512];
        missing(h, miss, sizeof(miss));
        who = "srun";
    }
    if (h->hosts && d->hello)
        return 0;
    return dv__errprintf(err, EHOSTDOWN, "%s: launch failed: %s", who,
                         d->lasterr[0] ? d->lasterr
                                       : "the launch command exited");
}

static int wait_hellos_in(mn_head_t *h, zmq_pollitem_t *it, int *map,
                          dv_error_t *err);

static int wait_hellos(mn_head_t *h, dv_error_t *err)
{
    int first, end;
    mn_tree_children(0, h->k, h->n, &first, &end);
    zmq_pollitem_t *it = malloc((size_t)(end - first + 1) * sizeof(*it));
    int *map = malloc((size_t)(end - first + 1) * sizeof(*map));
    int r = it && map ? wait_hellos_in(h, it, map, err)
                      : dv__errprintf(err, ENOMEM, "out of memory");
    free(it);
    free(map);
    return r;
}

/* Until every agent said hello: hellos, the launchers of the head's
 * children, the wire-up timeout. */
static int wait_hellos_in(mn_head_t *h, zmq_pollitem_t *it, int *map,
                          dv_error_t *err)
{
    double deadline = mn_now() + h->o.wireup_timeout_s;
    int first, end;
    mn_tree_children(0, h->k, h->n, &first, &end);
    for (;;) {
        if (h->hellos == h->n - 1)
            return 0;
        if (stop_pending())
            return dv__errprintf(err, EINTR, "interrupted during wire-up");
        wireup_beat(h);
        if (mn_now() > deadline) {
            char miss[512];
            missing(h, miss, sizeof(miss));
            const char *last = "";
            for (int i = 1; i < h->n && !*last; i++)
                if (!h->nd[i].hello || h->nd[i].ch.pid)
                    last = h->nd[i].lasterr;
            return dv__errprintf(
                err, ETIMEDOUT, "%s: no answer within %g s%s%s", miss,
                h->o.wireup_timeout_s, *last ? ": " : "", last);
        }
        int ni = 0;
        it[ni++] = (zmq_pollitem_t){h->router, 0, ZMQ_POLLIN, 0};
        for (int i = first; i < end; i++)
            if (h->nd[i].ch.pid && h->nd[i].ch.err_fd >= 0) {
                map[ni] = i;
                it[ni++] =
                    (zmq_pollitem_t){NULL, h->nd[i].ch.err_fd, ZMQ_POLLIN, 0};
            }
        if (zmq_poll(it, ni, 100) < 0 && errno != EINTR)
            return dv__errsys(err, "poll");
        if (it[0].revents)
            while (zmq_poll(it, 1, 0) > 0)
                if (wireup_message(h, err) < 0)
                    return -1;
        for (int j = 1; j < ni; j++)
            if (it[j].revents && wireup_launcher(h, map[j], err) < 0)
                return stop_pending() ? dv__errprintf(err, EINTR,
                                                      "interrupted during "
                                                      "wire-up")
                                      : -1;
    }
}

static int write_table(mn_head_t *h, const char *rundir, char *text, size_t cap)
{
    size_t l = 0;
    for (int i = 0; i < h->n; i++) {
        h->nd[i].info.index = i;
        l += (size_t)mn_table_line(&h->nd[i].info, h->nd[i].dport, text + l,
                                   cap - l);
        if (l >= cap)
            return -1;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/nodes", rundir);
    FILE *f = fopen(path, "we");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        return -1;
    if (h->n > 1 && mn_token_write(rundir, h->token) < 0)
        return -1;
    char num[16];
    setenv(DV_ENV_NODE_TABLE, path, 1);
    snprintf(num, sizeof(num), "%d", h->n);
    setenv(DV_ENV_NODE_COUNT, num, 1);
    setenv(DV_ENV_NODE_INDEX, "0", 1);
    return 0;
}

static int send_welcome(mn_head_t *h, const char *table, const char *prog,
                        char *const *argv)
{
    int first, end;
    mn_tree_children(0, h->k, h->n, &first, &end);
    double now = mn_now();
    for (int i = 1; i < h->n; i++) /* their heartbeats count from now */
        h->nd[i].seen = now;
    /* To the head's children, which pass it on down the tree. */
    for (int i = first; i < end; i++) {
        dv_wire_buf_t b;
        if (mn_msg_begin(&b, DV_WIRE_WELCOME, 0, i) < 0)
            return -1;
        dv__wire_put_str(&b, MN_TABLE, table);
        dv__wire_put_str(&b, MN_PROG, prog);
        dv__wire_put(&b, MN_TOKEN, h->token, sizeof(h->token));
        for (int k = 0; argv[k] && k < 24; k++)
            dv__wire_put_str(&b, MN_ARGV, argv[k]);
        if (mn_env_put(&b) < 0) {
            dv__wire_buf_release(&b);
            return -1;
        }
        if (dv__wire_end(&b, NULL) < 0 || send_to(h, i, &b) < 0)
            return -1;
    }
    return 0;
}

/* Stop every launched agent (wire-up failed): SIGTERM, then SIGKILL. */
static void kill_launched(mn_head_t *h)
{
    for (int i = 1; i < h->n; i++)
        if (h->nd[i].ch.pid > 0)
            kill(h->nd[i].ch.pid, SIGTERM);
    double end = mn_now() + 2;
    for (int i = 1; i < h->n; i++) {
        pid_t p = h->nd[i].ch.pid;
        while (p > 0 && waitpid(p, NULL, WNOHANG) == 0 && mn_now() < end)
            usleep(10000);
        if (p > 0 && waitpid(p, NULL, WNOHANG) == 0) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
        }
        h->nd[i].ch.pid = 0;
    }
}

/* This node's place in the allocation: SLURMD_NODENAME's in
 * SLURM_JOB_NODELIST, else SLURM_NODEID (in a step, the step's own: 0 for
 * node 0's drover run that a launcher started on the first node), else 0. */
static long slurm_self(int alloc)
{
    const char *me = getenv("SLURMD_NODENAME");
    const char *list = getenv("SLURM_JOB_NODELIST");
    const char *id = getenv("SLURM_NODEID");
    dv_hostlist_t l;
    long head = -1;
    if (me && list && dv__slurm_nodelist_expand(list, &l, NULL) == 0) {
        for (int i = 0; i < l.n && head < 0; i++)
            if (!strcmp(l.hosts[i], me))
                head = i;
        dv__hostlist_free(&l);
    }
    char *end = NULL;
    if (head < 0 && id)
        head = strtol(id, &end, 10);
    if (head < 0 || head >= alloc || (end && (end == id || *end)))
        head = 0;
    return head;
}

/* The CPUs Slurm gave each node of the job, when it says. This node is
 * the allocation's node slurm_self() (the batch or interactive step's
 * node: 0), the agents' nodes the others, in order. */
static int slurm_cpus(mn_head_t *h, int alloc, dv_error_t *err)
{
    const char *v = getenv("SLURM_JOB_CPUS_PER_NODE");
    long head = slurm_self(alloc);
    if (!v)
        return 0;
    int *all = calloc((size_t)alloc, sizeof(int));
    h->cpus = calloc((size_t)h->n, sizeof(int));
    int r = all && h->cpus ? dv__slurm_cpus_parse(v, alloc, all, err)
                           : dv__errprintf(err, ENOMEM, "out of memory");
    if (r == 0)
        dv__slurm_node_cpus(all, alloc, (int)head, h->cpus, h->n);
    free(all);
    return r;
}

/* The nodes: hostfile lines, or the Slurm allocation. */
static int node_set(mn_head_t *h, dv_error_t *err)
{
    if (h->o.hostfile || h->o.hostfile_text) {
        dv_hostlist_t l = {NULL, 0, NULL};
        const char *t = h->o.hostfile_text;
        if (t ? dv__hostfile_parse_text(t, strlen(t), &l, err) < 0
              : dv__hostfile_read(h->o.hostfile, &l, err) < 0)
            return -1;
        h->hosts = l.hosts;
        h->cpus = l.slots;
        h->n = l.n;
        return 0;
    }
    const char *nn = getenv("SLURM_JOB_NUM_NODES");
    int alloc = nn ? atoi(nn) : 0;
    if (alloc < 1)
        return dv__errprintf(err, EINVAL,
                             "--launcher slurm: not inside a Slurm allocation "
                             "(SLURM_JOB_NUM_NODES unset)");
    if (h->o.slurm_nodes > alloc)
        return dv__errprintf(err, EINVAL,
                             "--nodes %d: the allocation has %d node%s",
                             h->o.slurm_nodes, alloc, alloc == 1 ? "" : "s");
    h->n = h->o.slurm_nodes ? h->o.slurm_nodes : alloc;
    return slurm_cpus(h, alloc, err);
}

static int head_setup(mn_head_t *h, const char *keys, dv_error_t *err)
{
    char addr[64], ep[96];
    if (mn_local_addr(h->o.network_prefix, addr, sizeof(addr)) < 0)
        return dv__errprintf(err, EADDRNOTAVAIL,
                             "no IPv4 address%s%s on this host",
                             h->o.network_prefix ? " in " : "",
                             h->o.network_prefix ? h->o.network_prefix : "");
    snprintf(h->nd[0].info.address, sizeof(h->nd[0].info.address), "%s", addr);
    snprintf(ep, sizeof(ep), "tcp://%s:*", addr);
    h->router =
        dv__transport_listen(h->tp, ep, h->endpoint, sizeof(h->endpoint), err);
    if (!h->router)
        return -1;
    h->dfd = mn_data_listen(addr, &h->nd[0].dport, err);
    if (h->dfd < 0 ||
        getrandom(h->token, sizeof(h->token), 0) != (ssize_t)sizeof(h->token))
        return h->dfd < 0 ? -1 : dv__errsys(err, "getrandom");
    return h->o.slurm ? launch_slurm(h, keys, err)
                      : launch_hostfile(h, keys, err);
}

/* The program every node execs, as execvp finds it here: a name without
 * '/' is looked up in PATH (agents exec it with execve, and their PATH
 * need not be ours). */
static void program_path(const char *name, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    if (!strchr(name, '/') && path) {
        for (const char *p = path; *p;) {
            size_t n = strcspn(p, ":");
            char cand[PATH_MAX];
            if (snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, n ? p : ".",
                         name) < (int)sizeof(cand) &&
                access(cand, X_OK) == 0) {
                if (cand[0] == '/' || !realpath(cand, out))
                    snprintf(out, cap, "%s", cand);
                return;
            }
            p += n + (p[n] == ':');
        }
    }
    if (!realpath(name, out))
        snprintf(out, cap, "%s", name);
}

mn_head_t *mn_head_start(const struct mn_head_opts *o, const char *rundir,
                         char *const *prog_argv, dv_error_t *err)
{
    mn_head_t *h = calloc(1, sizeof(*h));
    char keys[DV_KEYS_TEXT], prog[PATH_MAX], table[65536];
    if (!h) {
        dv__errprintf(err, ENOMEM, "out of memory");
        return NULL;
    }
    h->o = *o;
    h->t0 = mn_now();
    pthread_mutex_init(&h->log_mu, NULL);
    h->stop[0] = h->stop[1] = h->reap[0] = h->reap[1] = -1;
    h->dfd = -1;
    h->local_out[0] = h->local_out[1] = h->local_out[2] = -1;
    if (node_set(h, err) < 0)
        goto fail;
    /* srun starts every agent itself: a star. */
    h->k = h->o.slurm ? 0 : mn_tree_fanout(err);
    if (h->k < 0)
        goto fail;
    if (!(h->nd = calloc((size_t)h->n, sizeof(*h->nd))))
        goto fail;
    for (int i = 0; i < h->n; i++)
        h->nd[i].ch.err_fd = h->nd[i].ch.in_fd = -1;
    self_info(h);
    char why[200];
    if (name_why(h->nd[0].info.hostname, why, sizeof(why)) < 0) {
        dv__errprintf(err, EINVAL, "this node: %s", why);
        goto fail;
    }
    if (h->n > 1) {
        if (dv__keys_generate(&h->keys, err) < 0 ||
            !(h->tp = dv__transport_create(&h->keys, mn_head_log, h, err)))
            goto fail;
        dv__keys_format(&h->keys, keys);
        int r = head_setup(h, keys, err);
        memset(keys, 0, sizeof(keys));
        if (r == 0)
            head_stats(h, "launched");
        if (r < 0 || wait_hellos(h, err) < 0)
            goto fail;
        head_stats(h, "hellos");
    }
    program_path(prog_argv[0], prog, sizeof(prog));
    if (write_table(h, rundir, table, sizeof(table)) < 0 ||
        send_welcome(h, table, prog, prog_argv) < 0) {
        dv__errsys(err, "cannot hand out the node table");
        goto fail;
    }
    if (h->n > 1)
        head_stats(h, "welcomed");
    if (pipe2(h->stop, O_CLOEXEC) < 0 || pipe2(h->reap, O_CLOEXEC) < 0)
        goto fail;
    fcntl(h->reap[0], F_SETFL, O_NONBLOCK);
    h->svc =
        mn_svc_create(0, h->n, rundir, prog, prog_argv, 0, head_send, h, err);
    if (!h->svc)
        goto fail;
    if (h->dfd >= 0) {
        if (!(h->data = mn_data_start(h->dfd, h->token, mn_head_log, h, err)))
            goto fail;
        h->dfd = -1; /* the data server's now */
    }
    return h;
fail:
    if (h->nd)
        kill_launched(h);
    int failed = 0;
    (void)failed;
    mn_head_finish(&h);
    return NULL;
}
