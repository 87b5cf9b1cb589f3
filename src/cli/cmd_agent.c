/* drover agent: the agent of one node of a multi-node job, started by
 * `drover run` through a launcher (ssh-like template or srun) with the
 * job's keys on its stdin. It says hello to the head over CURVE, gets the
 * node table, then serves its node (mn_svc: processes started here for
 * other nodes, their output, starts asked by processes of this node) until
 * the head says the job is over, or stops answering, or a signal comes;
 * then it tears its node down (every descendant, the job's shared memory
 * and runtime directory) and exits. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"
#include "multinode/mn.h"
#include "multinode/mn_tree.h"
#include "telemetry/telemetry.h"

struct agent {
    int index, n;
    const char *head, *job, *prefix;
    int dfd, dport;
    uint8_t token[32];
    mn_data_t *data;
    dv_job_keys_t keys;
    dv_transport_t *tp;
    void *dealer;
    mn_svc_t *svc;
    char rundir[PATH_MAX];
    char table[65536];
    char prog[PATH_MAX];
    char *argv[26];
    char cwd[PATH_MAX]; /* the main process's working directory */
    char *env;          /* and environment (mn_env.h's block) */
    size_t env_len;
    int sfd;
    double seen, next_beat;
    /* The tree (mn_tree.h): with --tree, the plan on stdin after the
     * keys, the children this agent launched, and the rest of stdin: the
     * head's broadcasts that the parent agent passes on (a child of the
     * head gets them from the head itself, and its stdin ends). */
    int tree;
    mn_tree_plan_t plan;
    mn_kids_t *kids;
    mn_tree_in_t in;
};

static int agent_send(void *arg, int dst, dv_wire_buf_t *b)
{
    struct agent *a = arg;
    (void)dst;
    return dv__transport_send(a->dealer, NULL, 0, b, NULL);
}

/* The agent's log: its stderr, which `drover run` passes on. Refused
 * peers of the control plane and of the data port come here. */
static void agent_log(void *arg, const char *line)
{
    const struct agent *a = arg;
    fprintf(stderr, "drover: agent: node %d: %s\n", a->index, line);
}

static const char agent_usage[] =
    "usage: drover agent --head ENDPOINT --job ID [--index I]\n"
    "                    [--network-prefix CIDR] [--tree] [--node-name NAME]\n"
    "\n"
    "The agent of one node of a multi-node job. drover run starts it on\n"
    "every other node (through --launch-cmd or srun) with the job's keys\n"
    "on its stdin; it is not meant to be run by hand.\n"
    "\n"
    "options:\n"
    "  -h, --help              show this help and exit\n"
    "  --head ENDPOINT         the head's control endpoint (tcp://A:P)\n"
    "  --job ID                the job's id\n"
    "  --index I               this node's index (default: SLURM_NODEID + 1)\n"
    "  --network-prefix CIDR   listen on the address in CIDR\n"
    "  --tree                  stdin holds the launch plan of this node's\n"
    "                          subtree after the keys, then the head's\n"
    "                          broadcasts that the parent passes on\n"
    "  --node-name NAME        this node's name instead of the host's, as\n"
    "                          DROVER_NODE_NAME gives it (nodes emulated on\n"
    "                          one host: --launch-cmd '{cmd} --node-name "
    "{host}')\n";

/* 0: run; 1: done (help); -1: bad usage. */
static int parse(int argc, char **argv, struct agent *a)
{
    a->index = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(agent_usage, stdout);
            return 1;
        }
        if (i + 1 < argc && !strcmp(argv[i], "--head"))
            a->head = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--job"))
            a->job = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--index"))
            a->index = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--network-prefix"))
            a->prefix = argv[++i];
        else if (!strcmp(argv[i], "--tree"))
            a->tree = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--node-name"))
            setenv(DV_ENV_NODE_NAME, argv[++i], 1); /* for its processes too */
        else {
            fprintf(stderr, "drover: agent: unknown argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (a->index < 0) {
        const char *id = getenv("SLURM_NODEID");
        a->index = id ? atoi(id) + 1 : -1;
    }
    if (!a->head || !a->job || a->index < 1) {
        fprintf(stderr, "drover: agent: needs --head, --job and --index (it "
                        "is started by drover run)\n");
        return -1;
    }
    return 0;
}

static int say_hello(struct agent *a, const char *host, dv_error_t *err)
{
    dv_wire_buf_t b;
    char addr[64] = "";
    if (mn_local_addr(a->prefix, addr, sizeof(addr)) < 0)
        return dv__errprintf(err, EADDRNOTAVAIL, "no IPv4 address%s%s",
                             a->prefix ? " in " : "",
                             a->prefix ? a->prefix : "");
    if ((a->dfd = mn_data_listen(addr, &a->dport, err)) < 0)
        return -1;
    if (mn_msg_begin(&b, DV_WIRE_HELLO, a->index, 0) < 0)
        return dv__errprintf(err, ENOMEM, "out of memory");
    cpu_set_t set;
    int cpus =
        sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    dv__wire_put_u64(&b, MN_INDEX, (uint64_t)a->index);
    dv__wire_put_str(&b, MN_HOST, host);
    dv__wire_put_str(&b, MN_ADDR, addr);
    dv__wire_put_str(&b, MN_VERSION, DROVER_VERSION);
    dv__wire_put_u64(&b, MN_CPUS, (uint64_t)cpus);
    /* As the telemetry samplers count them (one rule for every node). */
    dv__wire_put_u64(&b, MN_GPUS, (uint64_t)dv_telem_count_gpus(NULL, NULL, 0));
    dv__wire_put_u64(&b, MN_DPORT, (uint64_t)a->dport);
    dv__wire_put_u64(&b, MN_UID,
                     ((uint64_t)getpid() << 32) ^ (uint64_t)(mn_now() * 1e6));
    if (dv__wire_end(&b, err) < 0)
        return -1;
    return dv__transport_send(a->dealer, NULL, 0, &b, err);
}

/* A broadcast of the head goes on to this node's children. */
static void pass_on(struct agent *a, const dv_wire_view_t *v, const void *msg,
                    size_t len)
{
    if (!a->kids || mn_get_i64(v, MN_SRC, -1) != 0)
        return;
    if (v->type == DV_WIRE_WELCOME || v->type == DV_WIRE_NODE_LOST ||
        (v->type == DV_WIRE_KILL && mn_get_i64(v, MN_SHUTDOWN, 0)))
        mn_kids_forward(a->kids, msg, len);
}

/* A message of the head (msg[0, len), decoded in v) during the wait:
 * passed on to the children, then a WELCOME taken in (1), a KILL (-1
 * with err), or another message (0). */
static int welcome_msg(struct agent *a, const dv_wire_view_t *v,
                       const void *msg, size_t len, dv_error_t *err)
{
    pass_on(a, v, msg, len);
    if (v->type == DV_WIRE_KILL)
        return dv__errprintf(err, ECANCELED, "the job was cancelled");
    const dv_wire_field_t *tok = dv__wire_find(v, MN_TOKEN);
    if (v->type != DV_WIRE_WELCOME ||
        dv__wire_get_str(v, MN_TABLE, a->table, sizeof(a->table), NULL) < 0 ||
        dv__wire_get_str(v, MN_PROG, a->prog, sizeof(a->prog), NULL) < 0 ||
        !tok || tok->len != sizeof(a->token))
        return 0;
    memcpy(a->token, tok->data, sizeof(a->token));
    if (dv__wire_get_str(v, MN_CWD, a->cwd, sizeof(a->cwd), NULL) < 0)
        a->cwd[0] = '\0';
    const dv_wire_field_t *env = dv__wire_find(v, MN_ENV);
    free(a->env);
    a->env = NULL;
    a->env_len = 0;
    if (env && (a->env = malloc(env->len ? env->len : 1))) {
        memcpy(a->env, env->data, env->len);
        a->env_len = env->len;
    }
    int na = 0;
    for (int i = 0; i < v->nfields && na < 25; i++)
        if (v->fields[i].tag == MN_ARGV)
            a->argv[na++] =
                strndup((const char *)v->fields[i].data, v->fields[i].len);
    a->argv[na] = NULL;
    return na > 0;
}

/* The first stop signal pending on the signalfd (SIGCHLD is not one), or
 * 0. */
static int stop_signal(struct agent *a)
{
    struct signalfd_siginfo si;
    int stop = 0;
    while (read(a->sfd, &si, sizeof(si)) == sizeof(si))
        if (si.ssi_signo != SIGCHLD && !stop)
            stop = (int)si.ssi_signo;
    return stop;
}

static const char *signame(int sig)
{
    return sig == SIGTERM  ? "SIGTERM"
           : sig == SIGINT ? "SIGINT"
           : sig == SIGHUP ? "SIGHUP"
                           : "a signal";
}

/* A child's launch ended: the head decides what that means. */
static void kid_lost(void *arg, int child, const char *why)
{
    struct agent *a = arg;
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, DV_WIRE_TREE_LOST, a->index, 0) < 0)
        return;
    dv__wire_put_u64(&b, MN_INDEX, (uint64_t)child);
    dv__wire_put_str(&b, MN_TEXT, why);
    if (dv__wire_end(&b, NULL) == 0)
        agent_send(a, 0, &b);
    dv__wire_buf_release(&b);
}

/* --tree: launch this node's children (after the hello, so that the head
 * knows who reports on them; before the welcome, which needs them all). */
static int start_kids(struct agent *a, dv_error_t *err)
{
    char self[PATH_MAX], keys[DV_KEYS_TEXT];
    ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (k <= 0)
        return dv__errsys(err, "cannot find the drover binary");
    self[k] = 0;
    char *cmd[12];
    int n = 0;
    cmd[n++] = self;
    cmd[n++] = "agent";
    cmd[n++] = "--head";
    cmd[n++] = (char *)a->head;
    cmd[n++] = "--job";
    cmd[n++] = (char *)a->job;
    if (a->prefix) {
        cmd[n++] = "--network-prefix";
        cmd[n++] = (char *)a->prefix;
    }
    cmd[n] = NULL;
    dv__keys_format(&a->keys, keys);
    a->kids = mn_kids_start(&a->plan, cmd, keys, kid_lost, a, err);
    explicit_bzero(keys, sizeof(keys));
    return a->kids ? 0 : -1;
}

/* The next broadcast passed on by the parent, decoded: 1, or 0. */
static int next_from_parent(struct agent *a, dv_wire_view_t *v,
                            const uint8_t **msg, size_t *len)
{
    while (mn_tree_in_next(&a->in, msg, len))
        if (dv__wire_decode(*msg, *len, v, NULL) == 0 &&
            mn_get_i64(v, MN_SRC, -1) == 0)
            return 1;
    return 0;
}

/* The poll items of the head's socket, the signalfd, the parent's pipe,
 * the children (from it[*kids]); returns their number. */
static int base_items(struct agent *a, zmq_pollitem_t *it, int cap, int *kids)
{
    int ni = 0;
    it[ni++] = (zmq_pollitem_t){a->dealer, 0, ZMQ_POLLIN, 0};
    it[ni++] = (zmq_pollitem_t){NULL, a->sfd, ZMQ_POLLIN, 0};
    if (a->in.fd >= 0)
        it[ni++] = (zmq_pollitem_t){NULL, a->in.fd, ZMQ_POLLIN, 0};
    *kids = ni;
    if (a->kids)
        ni += mn_kids_poll_items(a->kids, it + ni, cap - ni);
    return ni;
}

#define ITEMS (600 + MN_TREE_FANOUT_MAX)

/* Wait for the node table: the head sends it once every node is in, and
 * until then acks the hello and beats every second. A stop signal, or
 * MN_DEAD_S without a word from the head, ends the wait (in a tree, the
 * first word may take the head's wire-up timeout: a thousand agents
 * starting at once on a few CPUs). */
static int wait_welcome(struct agent *a, dv_error_t *err)
{
    double seen = mn_now();
    double first_s = a->tree ? a->plan.wait_s : MN_DEAD_S;
    int heard = 0;
    static zmq_pollitem_t it[ITEMS];
    for (;;) {
        int first, ni = base_items(a, it, ITEMS, &first);
        zmq_poll(it, ni, 200);
        int sig = stop_signal(a);
        if (sig)
            return dv__errprintf(err, EINTR,
                                 "stopped by %s while waiting for the node "
                                 "table from the head",
                                 signame(sig));
        if (a->kids)
            mn_kids_on_poll(a->kids, it + first, ni - first);
        dv_transport_msg_t m;
        while (dv__transport_recv(a->dealer, &m, 0, NULL) == 0) {
            seen = mn_now();
            heard = 1;
            int r = welcome_msg(a, &m.view, zmq_msg_data(&m.body),
                                zmq_msg_size(&m.body), err);
            dv__transport_msg_close(&m);
            if (r)
                return r < 0 ? -1 : 0;
        }
        dv_wire_view_t v;
        const uint8_t *msg;
        size_t len;
        mn_tree_in_read(&a->in);
        while (next_from_parent(a, &v, &msg, &len)) {
            int r = welcome_msg(a, &v, msg, len, err);
            if (r)
                return r < 0 ? -1 : 0;
        }
        if (mn_now() - seen > (heard ? MN_DEAD_S : first_s))
            return heard ? dv__errprintf(err, ETIMEDOUT,
                                         "lost the head %s during wire-up "
                                         "(no heartbeat for %g s)",
                                         a->head, MN_DEAD_S)
                         : dv__errprintf(err, EHOSTUNREACH,
                                         "head %s unreachable (no answer "
                                         "within %g s)",
                                         a->head, first_s);
    }
}

/* The runtime directory and environment of this node's processes. */
static int node_env(struct agent *a, dv_error_t *err)
{
    if (dv__rundir_create(a->rundir, sizeof(a->rundir), err) < 0)
        return -1;
    char path[PATH_MAX + 8], num[16];
    snprintf(path, sizeof(path), "%s/nodes", a->rundir);
    FILE *f = fopen(path, "we");
    if (!f || fputs(a->table, f) < 0 || fclose(f) != 0)
        return dv__errsys(err, "%s", path);
    a->n = 0;
    for (const char *p = a->table; (p = strchr(p, '\n')); p++)
        a->n++;
    if (mn_token_write(a->rundir, a->token) < 0)
        return dv__errsys(err, "%s/token", a->rundir);
    setenv(DV_ENV_RUNDIR, a->rundir, 1);
    setenv(DV_ENV_NODE_TABLE, path, 1);
    snprintf(num, sizeof(num), "%d", a->n);
    setenv(DV_ENV_NODE_COUNT, num, 1);
    snprintf(num, sizeof(num), "%d", a->index);
    setenv(DV_ENV_NODE_INDEX, num, 1);
    return a->index < a->n ? 0 : dv__errprintf(err, EPROTO, "bad node table");
}

static void on_reaped(struct agent *a)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        mn_svc_reaped(a->svc, pid, st);
}

/* Returns 1 when the job is over. */
static int on_signals(struct agent *a)
{
    struct signalfd_siginfo si;
    int stop = 0;
    while (read(a->sfd, &si, sizeof(si)) == sizeof(si))
        if (si.ssi_signo != SIGCHLD)
            stop = 1;
    on_reaped(a);
    return stop;
}

/* A message of the head, straight or through the parent. Returns 1 when
 * the job is over. */
static int on_message(struct agent *a, const dv_wire_view_t *v, const void *msg,
                      size_t len)
{
    int stop = v->type == DV_WIRE_KILL && mn_get_i64(v, MN_SHUTDOWN, 0);
    pass_on(a, v, msg, len);
    if (v->type != DV_WIRE_HEARTBEAT && v->type != DV_WIRE_WELCOME && !stop)
        mn_svc_on_wire(a->svc, v);
    return stop;
}

/* Messages of the head (they also show it is there). Returns 1 when the
 * job is over. */
static int on_head(struct agent *a)
{
    dv_transport_msg_t m;
    for (int k = 0; k < 256; k++) {
        if (dv__transport_recv(a->dealer, &m, 0, NULL) < 0)
            return 0;
        a->seen = mn_now();
        int stop = on_message(a, &m.view, zmq_msg_data(&m.body),
                              zmq_msg_size(&m.body));
        dv__transport_msg_close(&m);
        if (stop)
            return 1;
    }
    return 0;
}

/* The head's broadcasts that the parent passed on. Returns 1 when the job
 * is over. */
static int on_parent(struct agent *a)
{
    dv_wire_view_t v;
    const uint8_t *msg;
    size_t len;
    mn_tree_in_read(&a->in);
    while (next_from_parent(a, &v, &msg, &len))
        if (on_message(a, &v, msg, len))
            return 1;
    return 0;
}

static void beat(struct agent *a)
{
    double now = mn_now();
    if (now < a->next_beat)
        return;
    a->next_beat = now + MN_HEARTBEAT_S;
    dv_wire_buf_t b;
    if (mn_msg_begin(&b, DV_WIRE_HEARTBEAT, a->index, 0) == 0 &&
        dv__wire_end(&b, NULL) == 0)
        agent_send(a, 0, &b);
    dv__wire_buf_release(&b);
}

static void serve(struct agent *a)
{
    a->seen = mn_now();
    static zmq_pollitem_t it[ITEMS];
    for (;;) {
        int first, ni = base_items(a, it, ITEMS, &first);
        int nsvc = mn_svc_poll_items(a->svc, it + ni, ITEMS - ni);
        zmq_poll(it, ni + nsvc, 200);
        if (on_head(a) || on_parent(a))
            return;
        if (it[1].revents && on_signals(a))
            return;
        if (a->kids)
            mn_kids_on_poll(a->kids, it + first, ni - first);
        on_reaped(a); /* also when a thread not ours took the SIGCHLD */
        mn_svc_on_poll(a->svc, it + ni, nsvc);
        beat(a);
        if (mn_now() - a->seen > MN_DEAD_S) {
            fprintf(stderr,
                    "drover: agent: node %d: lost the head (no "
                    "heartbeat for %g s)\n",
                    a->index, MN_DEAD_S);
            return;
        }
    }
}

/* Forward what the node's processes still had to say. */
static void drain_output(struct agent *a)
{
    mn_svc_drain_output(a->svc);
}

static int start(struct agent *a, dv_error_t *err)
{
    char host[64] = "";
    const char *name = getenv(DV_ENV_NODE_NAME);
    if (name && *name)
        snprintf(host, sizeof(host), "%s", name);
    else
        gethostname(host, sizeof(host) - 1);
    if (dv__keys_read_fd(0, &a->keys, err) < 0 ||
        (a->tree && mn_tree_plan_read(0, a->index, &a->plan, err) < 0))
        return -1;
    if (a->tree &&
        mn_tree_in_init(&a->in, 0, a->plan.rest, a->plan.rest_len) < 0)
        return dv__errprintf(err, ENOMEM, "out of memory");
    if (!(a->tp = dv__transport_create(&a->keys, agent_log, a, err)) ||
        !(a->dealer = dv__transport_connect(a->tp, a->head, err)) ||
        say_hello(a, host, err) < 0 || (a->tree && start_kids(a, err) < 0) ||
        wait_welcome(a, err) < 0 || node_env(a, err) < 0)
        return -1;
    a->svc = mn_svc_create(a->index, a->n, a->rundir, a->prog, a->argv, 1,
                           agent_send, a, err);
    if (!a->svc)
        return -1;
    if (a->env && mn_svc_set_origin(a->svc, a->cwd, a->env, a->env_len) < 0)
        return dv__errsys(err, "the main process's environment");
    if (!(a->data = mn_data_start(a->dfd, a->token, agent_log, a, err)))
        return -1;
    a->dfd = -1; /* the data server's now */
    return 0;
}

int dv__cmd_agent(int argc, char **argv)
{
    struct agent a;
    memset(&a, 0, sizeof(a));
    a.sfd = -1;
    a.dfd = -1;
    a.in.fd = -1; /* without --tree, stdin ends with the keys */
    int p = parse(argc, argv, &a);
    if (p)
        return p > 0 ? 0 : 2;
    /* The node index names this node's objects (dv__job_node_id). */
    char idx[16];
    snprintf(idx, sizeof(idx), "%d", a.index);
    setenv(DV_ENV_JOB, a.job, 1);
    setenv(DV_ENV_NODE_INDEX, idx, 1);
    sigset_t old;
    dv__agent_block_signals(&old);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* the launcher (nsenter, ssh) */
    /* Our stderr may be read by a parent agent that is gone: a line
     * written then is lost, not the teardown. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    a.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    dv_error_t err;
    int rc = 0;
    if (a.sfd < 0 || start(&a, &err) < 0) {
        fprintf(stderr, "drover: agent: node %d: %s\n", a.index,
                a.sfd < 0 ? strerror(errno) : err.text);
        rc = 1;
        mn_kids_kill(a.kids); /* the launches of its subtree */
    } else {
        serve(&a);
        dv__agent_kill_tree(dv__grace_s());
        drain_output(&a);
    }
    mn_data_stop(&a.data);
    if (a.dfd >= 0)
        close(a.dfd);
    mn_svc_destroy(&a.svc);
    mn_kids_destroy(&a.kids);
    mn_tree_plan_free(&a.plan);
    mn_tree_in_free(&a.in);
    if (a.rundir[0])
        dv__job_cleanup(a.rundir);
    if (a.dealer) {
        int linger = rc ? 0 : 1000; /* a failed wire-up has nothing to say */
        zmq_setsockopt(a.dealer, ZMQ_LINGER, &linger, sizeof(linger));
        dv__transport_close(a.tp, &a.dealer);
    }
    dv__transport_destroy(&a.tp);
    dv__keys_wipe(&a.keys);
    for (int i = 0; a.argv[i]; i++)
        free(a.argv[i]);
    free(a.env);
    return rc;
}
