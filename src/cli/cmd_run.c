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
#include "lib/internal.h"
#include "lib/runtime.h"

static const char run_usage[] =
    "usage: drover run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Run PROGRAM as the main process of a job on this machine and exit with\n"
    "its status (128 + N when signal N killed it).\n"
    "\n"
    "options:\n"
    "  -h, --help        show this help and exit\n"
    "  --grace S         seconds between SIGTERM and SIGKILL at teardown\n"
    "                    (default 2, at most 60)\n"
    "  --job-id ID       name the job ID ([A-Za-z0-9_-], default: made up)\n";

struct run_opts {
    const char *grace;
    const char *job_id;
    int prog; /* index of PROGRAM in argv */
};

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

static int is_opt(const char *a, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(a, name, n) && (a[n] == 0 || a[n] == '=');
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
        if (is_opt(a, "--grace")) {
            if (!(o->grace = opt_value(argc, argv, &i, "--grace")))
                return 2;
        } else if (is_opt(a, "--job-id")) {
            if (!(o->job_id = opt_value(argc, argv, &i, "--job-id")))
                return 2;
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

/* Fork PROGRAM; an exec failure comes back through a close-on-exec pipe. */
static pid_t start_main(char **argv, const sigset_t *old, int *exec_errno)
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
    struct run_opts o = {NULL, NULL, 0};
    int r = parse(argc, argv, &o);
    if (r)
        return r == 1 ? 0 : 2;
    if (check_opts(&o) < 0)
        return 2;
    char dir[PATH_MAX];
    dv_error_t err;
    if (dv__rundir_create(dir, sizeof(dir), &err) < 0) {
        fprintf(stderr, "drover: run: %s\n", err.text);
        return 1;
    }
    setenv(DV_ENV_RUNDIR, dir, 1);
    setenv(DV_ENV_JOB, dv__job_id(), 1);
    sigset_t old;
    dv__agent_block_signals(&old);
    /* An agent that loses its parent (a shell, srun, ssh) ends its job. */
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        raise(SIGTERM);
    int exec_errno;
    pid_t pid = start_main(argv + o.prog, &old, &exec_errno);
    if (pid < 0) {
        fprintf(stderr, "drover: run: fork: %s\n", strerror(errno));
        dv__job_cleanup(dir);
        return 1;
    }
    if (exec_errno)
        fprintf(stderr, "drover: run: %s: %s\n", argv[o.prog],
                strerror(exec_errno));
    struct dv__agent_opts ao = {dv__grace_s(), dir};
    int signo = 0;
    int st = dv__agent_supervise(pid, &ao, &signo);
    if (exec_errno)
        return exec_errno == ENOENT ? 127 : 126;
    if (signo)
        return 128 + signo;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL);
}
