/* drover run: start the node's agent, run PROGRAM as the job's main
 * process, and exit with its status (128 + N when signal N killed it).
 * Every process of the job inherits drover run's stdout and stderr, so
 * their output reaches its terminal. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/error.h"
#include "lib/internal.h"
#include "lib/runtime.h"
#include "multinode/launch.h"
#include "multinode/mn.h"
#include "telemetry/telemetry.h"

static const char run_usage[] =
    "usage: drover run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Run PROGRAM as the main process of a job on this machine and exit with\n"
    "its status (128 + N when signal N killed it).\n"
    "\n"
    "options:\n"
    "  -h, --help        show this help and exit\n"
    "  --grace S         seconds between SIGTERM and SIGKILL at teardown,\n"
    "                    and from a node's loss to the teardown (default 2,\n"
    "                    at most 60)\n"
    "  --job-id ID       name the job ID ([A-Za-z0-9_-], default: made up)\n"
    "\n"
    "multi-node (an agent per node; node 0, the first, runs PROGRAM):\n"
    "  --hostfile FILE   hosts, one a line ('#' comments, blank lines)\n"
    "  --launch-cmd T    how to start a command on {host}: words, {host} and\n"
    "                    {cmd} replaced (default: ssh -o BatchMode=yes {host}\n"
    "                    {cmd})\n"
    "  --launcher L      local, hostfile or slurm (default: slurm inside an\n"
    "                    allocation, hostfile with --hostfile, else local)\n"
    "  --node0 W         where node 0 is: here, first (the allocation's or\n"
    "                    host file's first node: drover run only launches)\n"
    "                    or auto (default: here when this host is one of\n"
    "                    the nodes, else first)\n"
    "  --nodes N         with slurm: use N nodes of the allocation\n"
    "  --network-prefix CIDR  listen on the address in CIDR\n"
    "  --wireup-timeout S     seconds for every node to answer (default 30)\n"
    "  --label           prefix every output line with [hostname]\n"
    "  --keep-going      a lost node does not end the job: its processes\n"
    "                    end as killed, its queues and events fail, pool\n"
    "                    items that ran there run again elsewhere\n"
    "  --policy P        default placement of the job: round-robin, block,\n"
    "                    local\n";

struct run_opts {
    const char *grace;
    const char *job_id;
    const char *hostfile, *launch_cmd, *launcher, *nodes, *prefix, *wireup;
    const char *policy, *node0, *hostfile_text;
    int label;
    int keep_going;
    int prog; /* index of PROGRAM in argv */
};

/* The options that take a value: name, where it goes. */
static const char **value_slot(struct run_opts *o, const char *a,
                               const char **name)
{
    static const char *names[] = {
        "--grace",    "--job-id", "--hostfile",       "--launch-cmd",
        "--launcher", "--nodes",  "--network-prefix", "--wireup-timeout",
        "--policy",   "--node0",  "--hostfile-text"};
    const char **slots[] = {&o->grace,      &o->job_id,       &o->hostfile,
                            &o->launch_cmd, &o->launcher,     &o->nodes,
                            &o->prefix,     &o->wireup,       &o->policy,
                            &o->node0,      &o->hostfile_text};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);
        if (!strncmp(a, names[i], n) && (a[n] == 0 || a[n] == '=')) {
            *name = names[i];
            return slots[i];
        }
    }
    return NULL;
}

/* Value of option argv[*i] ("--opt V" or "--opt=V"); NULL on error. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "drover: run: %s needs a value\n", name);
        return NULL;
    }
    return argv[++*i];
}

/* 0: run; 1: done (help); 2: bad usage. */
static int parse(int argc, char **argv, struct run_opts *o)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(run_usage, stdout);
            return 1;
        }
        const char *name, **slot = value_slot(o, a, &name);
        if (slot) {
            if (!(*slot = opt_value(argc, argv, &i, name)))
                return 2;
        } else if (!strcmp(a, "--label")) {
            o->label = 1;
        } else if (!strcmp(a, "--keep-going")) {
            o->keep_going = 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "drover: run: unknown option '%s'\n", a);
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "drover: run: missing PROGRAM (usage: drover run "
                        "[OPTIONS] -- PROGRAM [ARGS...])\n");
        return 2;
    }
    o->prog = i;
    return 0;
}

static int check_opts(const struct run_opts *o)
{
    if (o->grace) {
        char *end;
        double g = strtod(o->grace, &end);
        if (end == o->grace || *end || !(g >= 0 && g <= 60)) {
            fprintf(stderr,
                    "drover: run: --grace: '%s' is not a number of "
                    "seconds in 0..60\n",
                    o->grace);
            return -1;
        }
        setenv(DV_ENV_GRACE, o->grace, 1);
    }
    unsetenv(DV_ENV_JOB);
    if (o->job_id) {
        setenv(DV_ENV_JOB, o->job_id, 1);
        if (strcmp(dv__job_id(), o->job_id)) {
            fprintf(stderr,
                    "drover: run: --job-id: '%s' is not a valid "
                    "job id\n",
                    o->job_id);
            return -1;
        }
    }
    return 0;
}

static int bad_number(const char *opt, const char *v, double lo, double hi,
                      double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "drover: run: %s: '%s' is not a number in %g..%g\n",
                opt, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int node0_mode(const struct run_opts *o, int *mode)
{
    const char *w = o->node0 ? o->node0 : "auto";
    *mode = !strcmp(w, "here")    ? MN_NODE0_HERE
            : !strcmp(w, "first") ? MN_NODE0_FIRST
                                  : MN_NODE0_AUTO;
    if (*mode == MN_NODE0_AUTO && strcmp(w, "auto")) {
        fprintf(stderr,
                "drover: run: --node0: '%s' is not here, first or auto\n", w);
        return -1;
    }
    return 0;
}

/* The multi-node options; *multi set when the job has a head. */
static int check_multi(const struct run_opts *o, struct mn_head_opts *m,
                       int *multi)
{
    memset(m, 0, sizeof(*m));
    m->hostfile = o->hostfile;
    m->hostfile_text = o->hostfile_text;
    m->launch_cmd = o->launch_cmd;
    m->network_prefix = o->prefix;
    m->label = o->label;
    m->keep_going = o->keep_going;
    m->wireup_timeout_s = 30;
    const char *l = o->launcher;
    if (l && strcmp(l, "local") && strcmp(l, "hostfile") &&
        strcmp(l, "slurm")) {
        fprintf(stderr,
                "drover: run: --launcher: '%s' is not local, "
                "hostfile or slurm\n",
                l);
        return -1;
    }
    if (!l)
        l = o->hostfile || o->hostfile_text ? "hostfile"
            : getenv("SLURM_JOB_ID")        ? "slurm"
                                            : "local";
    if (!strcmp(l, "hostfile") && !o->hostfile && !o->hostfile_text) {
        fprintf(stderr, "drover: run: --launcher hostfile needs --hostfile\n");
        return -1;
    }
    int mode;
    if (node0_mode(o, &mode) < 0)
        return -1;
    m->slurm = !strcmp(l, "slurm");
    *multi = strcmp(l, "local") != 0;
    double x;
    if (o->wireup && bad_number("--wireup-timeout", o->wireup, 0.1, 3600,
                                &m->wireup_timeout_s) < 0)
        return -1;
    if (o->nodes) {
        if (bad_number("--nodes", o->nodes, 1, 65536, &x) < 0)
            return -1;
        if (x != (int)x) {
            fprintf(stderr,
                    "drover: run: --nodes: '%s' is not a whole number of "
                    "nodes\n",
                    o->nodes);
            return -1;
        }
        m->slurm_nodes = (int)x;
    }
    /* Checked whatever the launcher: a typo must not wait for the day the
     * job runs on several nodes. */
    if (o->prefix && *o->prefix && mn_prefix_parse(o->prefix, NULL, NULL) < 0) {
        fprintf(stderr,
                "drover: run: --network-prefix: '%s' is not an IPv4 "
                "prefix (A.B.C.D/LEN)\n",
                o->prefix);
        return -1;
    }
    if (o->policy) {
        if (strcmp(o->policy, "round-robin") && strcmp(o->policy, "block") &&
            strcmp(o->policy, "local")) {
            fprintf(stderr,
                    "drover: run: --policy: '%s' is not round-robin, "
                    "block or local\n",
                    o->policy);
            return -1;
        }
        setenv(DV_ENV_POLICY, o->policy, 1);
    }
    return 0;
}

/* The words of node 0's drover run: "--node0 here", this run's options
 * but --hostfile (its text goes instead) and --node0, then PROGRAM and its
 * arguments. Pointers into argv. */
static char **node0_words(int argc, char **argv, const struct run_opts *o)
{
    char **w = calloc((size_t)argc + 4, sizeof(char *));
    int n = 0;
    if (!w)
        return NULL;
    w[n++] = "--node0";
    w[n++] = "here";
    for (int i = 1; i < o->prog; i++) {
        struct run_opts scratch;
        const char *name = NULL;
        if (!strcmp(argv[i], "--"))
            continue;
        int slot = value_slot(&scratch, argv[i], &name) != NULL;
        int sep = slot && argv[i][strlen(name)] != '=';
        if (!slot || (strcmp(name, "--hostfile") && strcmp(name, "--node0") &&
                      strcmp(name, "--hostfile-text"))) {
            w[n++] = argv[i];
            if (sep)
                w[n++] = argv[i + 1];
        }
        i += sep;
    }
    w[n++] = "--";
    for (int i = o->prog; i < argc; i++)
        w[n++] = argv[i];
    return w;
}

/* Not one of the nodes (or --node0 first): launch node 0's drover run.
 * Returns its exit status, or -1 to go on here (this host is node 0). */
static int run_elsewhere(int argc, char **argv, const struct run_opts *o,
                         const struct mn_head_opts *mo)
{
    int mode;
    mn_node0_t n0;
    dv_error_t err;
    if (node0_mode(o, &mode) < 0)
        return 2;
    if (mode == MN_NODE0_HERE)
        return -1;
    if (mn_node0_find(mo, mode, &n0, &err) < 0) {
        fprintf(stderr, "drover: run: %s\n", err.text);
        return 1;
    }
    if (n0.here) {
        mn_node0_clear(&n0);
        return -1;
    }
    char **w = node0_words(argc, argv, o);
    int rc = w ? mn_node0_launch(mo, &n0, w, dv__grace_s(), &err)
               : dv__errprintf(&err, ENOMEM, "out of memory");
    if (rc < 0) {
        fprintf(stderr, "drover: run: %s\n", err.text);
        rc = 1;
    }
    free(w);
    mn_node0_clear(&n0);
    return rc;
}

/* Node 0's drover run started by srun: SIGUSR1 is the launcher's stop
 * (srun passes it on; SIGTERM it turns into SIGKILL), taken for SIGTERM,
 * which is blocked, so that it waits for the supervision. */
static void usr1_stop(int sig)
{
    (void)sig;
    kill(getpid(), SIGTERM);
}

/* `drover run --launched HEX...` (node 0's, from run_elsewhere): the words
 * in place of the arguments. Kept for the process's life. */
static char **launched_words, **launched_argv;
static int launched_args(int *argc, char ***argv)
{
    if (*argc < 3 || strcmp((*argv)[1], "--launched"))
        return 0;
    char **w = dv__words_decode(*argv + 2, *argc - 2);
    int n = 0;
    while (w && w[n])
        n++;
    char **nv = w ? calloc((size_t)n + 2, sizeof(char *)) : NULL;
    if (!nv) {
        fprintf(stderr, "drover: run: --launched: not drover run's words\n");
        dv__launch_argv_free(w);
        return -1;
    }
    nv[0] = (*argv)[0];
    memcpy(nv + 1, w, (size_t)n * sizeof(char *));
    free(launched_words);
    free(launched_argv);
    launched_words = w; /* the strings, owned here */
    launched_argv = nv;
    *argc = n + 1;
    *argv = nv;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = usr1_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    return 0;
}

/* Fork PROGRAM; an exec failure comes back through a close-on-exec pipe. */
/* outw: write ends for PROGRAM's stdout and stderr (NULL: ours). */
static pid_t start_main(char **argv, const sigset_t *old, const int *outw,
                        int *exec_errno)
{
    int p[2];
    *exec_errno = 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t agent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        sigprocmask(SIG_SETMASK, old, NULL);
        prctl(PR_SET_CHILD_SUBREAPER, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != agent)
            _exit(127);
        if (outw && (dup2(outw[0], 1) < 0 || dup2(outw[1], 2) < 0))
            _exit(127);
        execvp(argv[0], argv);
        int e = errno;
        if (write(p[1], &e, sizeof(e)) < 0)
            _exit(127);
        _exit(127);
    }
    close(p[1]);
    if (pid > 0 && read(p[0], exec_errno, sizeof(int)) != sizeof(int))
        *exec_errno = 0;
    close(p[0]);
    return pid;
}

int dv__cmd_run(int argc, char **argv)
{
    /* First of all, before anything (NVML's GPU count, ZeroMQ) can start
     * a thread: a thread started with these signals unblocked would take
     * the SIGCHLD and the stop signals meant for the supervision. */
    sigset_t old;
    dv__agent_block_signals(&old);
    struct run_opts o;
    memset(&o, 0, sizeof(o));
    if (launched_args(&argc, &argv) < 0)
        return 2;
    int r = parse(argc, argv, &o);
    if (r)
        return r == 1 ? 0 : 2;
    if (launched_words && mn_node0_watch_output() < 0) {
        fprintf(stderr, "drover: run: cannot watch the launcher: %s\n",
                strerror(errno));
        return 1;
    }
    struct mn_head_opts mo;
    int multi = 0;
    if (check_opts(&o) < 0 || check_multi(&o, &mo, &multi) < 0)
        return 2;
    if (multi && (r = run_elsewhere(argc, argv, &o, &mo)) >= 0)
        return r;
    char dir[PATH_MAX];
    dv_error_t err;
    if (dv__rundir_create(dir, sizeof(dir), &err) < 0) {
        fprintf(stderr, "drover: run: %s\n", err.text);
        return 1;
    }
    setenv(DV_ENV_JOB, dv__job_id(), 1);
    if (!multi) { /* the node table of a multi-node job has them */
        char gpus[16];
        snprintf(gpus, sizeof(gpus), "%d", dv_telem_count_gpus(NULL, NULL, 0));
        setenv(DV_ENV_NODE_GPUS, gpus, 1);
    }
    mn_head_t *head = NULL;
    if (multi && !(head = mn_head_start(&mo, dir, argv + o.prog, &err))) {
        fprintf(stderr, "drover: run: %s\n", err.text);
        /* What the launchers started and left (orphans come back to us). */
        dv__agent_kill_tree(dv__grace_s());
        dv__job_cleanup(dir);
        return 1;
    }
    /* Set once the agents are launched: this node's runtime dir is not
     * theirs (and where nodes share a host, the cleaner of a killed head
     * would take them for its job's processes). */
    setenv(DV_ENV_RUNDIR, dir, 1);
    /* An agent that loses its parent (a shell, srun, ssh) ends its job. */
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        raise(SIGTERM);
    int exec_errno;
    /* --label: node 0's output goes through the head too, to be labelled
     * like the other nodes'. */
    int outp[2][2] = {{-1, -1}, {-1, -1}}, outw[2];
    int labelled = head && o.label && pipe2(outp[0], O_CLOEXEC) == 0 &&
                   pipe2(outp[1], O_CLOEXEC) == 0;
    outw[0] = outp[0][1];
    outw[1] = outp[1][1];
    pid_t pid =
        start_main(argv + o.prog, &old, labelled ? outw : NULL, &exec_errno);
    for (int k = 0; k < 2; k++)
        if (outp[k][1] >= 0)
            close(outp[k][1]);
    if (head && labelled)
        mn_head_local_output(head, outp[0][0], outp[1][0]);
    if (pid < 0) {
        fprintf(stderr, "drover: run: fork: %s\n", strerror(errno));
        mn_head_finish(&head);
        dv__job_cleanup(dir);
        return 1;
    }
    if (exec_errno)
        fprintf(stderr, "drover: run: %s: %s\n", argv[o.prog],
                strerror(exec_errno));
    if (head && mn_head_run(head) < 0) {
        fprintf(stderr, "drover: run: cannot start the head's thread\n");
        kill(pid, SIGTERM);
    }
    struct dv__agent_opts ao = {dv__grace_s(), dir,
                                head ? mn_head_reaped : NULL,
                                head ? mn_head_before_teardown : NULL, head};
    int signo = 0;
    int st = dv__agent_supervise(pid, &ao, &signo);
    if (mn_head_finish(&head))
        return 1;
    if (exec_errno)
        return exec_errno == ENOENT ? 127 : 126;
    if (signo)
        return 128 + signo;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL);
}
