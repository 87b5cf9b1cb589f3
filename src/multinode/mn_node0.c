/* `drover run` on a host outside the node set (a login node under salloc,
 * a host the host file does not list first): it only launches. Node 0,
 * the first node of the allocation or host file, runs `drover run --node0
 * here` (the head, node 0's agent and the main process, as drover run on a
 * node does), started through srun or the launch template with the words
 * hex-encoded, so that no shell on the way changes them. Node 0's output
 * comes back on srun's or the template's stdout and stderr, its exit
 * status as theirs; a stop signal here goes on to node 0's drover run,
 * which tears down every node. */
#define _GNU_SOURCE
#include "multinode/mn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "multinode/launch.h"

static int slurm_find(mn_node0_t *out, dv_error_t *err)
{
    const char *list = getenv("SLURM_JOB_NODELIST");
    const char *me = getenv("SLURMD_NODENAME");
    dv_hostlist_t l;
    if (!list)
        list = getenv("SLURM_NODELIST");
    if (!list || !*list) /* nothing to compare with: as before */
        return out->here = 1, 0;
    if (dv__slurm_nodelist_expand(list, &l, err) < 0)
        return -1;
    for (int i = 0; i < l.n && !out->here; i++)
        out->here = me && *me ? !strcmp(l.hosts[i], me)
                              : dv__host_names_self(l.hosts[i]);
    snprintf(out->first, sizeof(out->first), "%s", l.hosts[0]);
    dv__hostlist_free(&l);
    return 0;
}

/* The hosts again as host-file text, for node 0's drover run. */
static char *hosts_text(const dv_hostlist_t *l)
{
    size_t cap = 1, at = 0;
    for (int i = 0; i < l->n; i++)
        cap += strlen(l->hosts[i]) + 20;
    char *t = malloc(cap);
    for (int i = 0; t && i < l->n; i++)
        at += (size_t)(l->slots && l->slots[i]
                           ? snprintf(t + at, cap - at, "%s slots=%d\n",
                                      l->hosts[i], l->slots[i])
                           : snprintf(t + at, cap - at, "%s\n", l->hosts[i]));
    return t;
}

int mn_node0_find(const struct mn_head_opts *o, int mode, mn_node0_t *out,
                  dv_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (o->slurm) {
        if (mode == MN_NODE0_AUTO && slurm_find(out, err) < 0)
            return -1;
        out->here =
            mode == MN_NODE0_HERE || (mode == MN_NODE0_AUTO && out->here);
        return 0;
    }
    dv_hostlist_t l;
    const char *t = o->hostfile_text;
    if (t ? dv__hostfile_parse_text(t, strlen(t), &l, err) < 0
          : dv__hostfile_read(o->hostfile, &l, err) < 0)
        return -1;
    out->here = mode == MN_NODE0_HERE ||
                (mode == MN_NODE0_AUTO && dv__host_is_self(l.hosts[0]));
    snprintf(out->first, sizeof(out->first), "%s", l.hosts[0]);
    if (!out->here && !(out->hosts_text = hosts_text(&l))) {
        dv__hostlist_free(&l);
        return dv__errprintf(err, ENOMEM, "out of memory");
    }
    dv__hostlist_free(&l);
    return 0;
}

void mn_node0_clear(mn_node0_t *n0)
{
    if (n0) {
        free(n0->hosts_text);
        n0->hosts_text = NULL;
    }
}

/* `SELF run --launched HEX...`, with the host file's text in front. */
static char **node0_cmd(const mn_node0_t *n0, char *const *words)
{
    int n = 0;
    while (words[n])
        n++;
    char **all = calloc((size_t)n + 3, sizeof(char *)), **hex = NULL;
    if (!all)
        return NULL;
    int k = 0;
    if (n0->hosts_text) {
        all[k++] = "--hostfile-text";
        all[k++] = n0->hosts_text;
    }
    memcpy(all + k, words, (size_t)n * sizeof(char *));
    hex = dv__words_encode(all);
    free(all);
    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    int nh = 0;
    while (hex && hex[nh])
        nh++;
    char **cmd = hex && sl > 0 ? calloc((size_t)nh + 4, sizeof(char *)) : NULL;
    if (cmd) {
        self[sl] = 0;
        cmd[0] = strdup(self);
        cmd[1] = strdup("run");
        cmd[2] = strdup("--launched");
        memcpy(cmd + 3, hex, (size_t)nh * sizeof(char *));
        free(hex);
        hex = NULL;
        if (!cmd[0] || !cmd[1] || !cmd[2]) {
            dv__launch_argv_free(cmd);
            cmd = NULL;
        }
    }
    dv__launch_argv_free(hex);
    return cmd;
}

/* srun for one task on node 0 (the allocation's first node), unbound. */
static char **srun_cmd(const mn_node0_t *n0, char **cmd)
{
    char *fixed[] = {"srun",
                     "--nodes=1",
                     "--ntasks=1",
                     "--cpu-bind=none",
                     "--kill-on-bad-exit=0",
                     "--input=all",
                     "--quiet"};
    int nf = (int)(sizeof(fixed) / sizeof(fixed[0])), nc = 0, a = 0;
    while (cmd[nc])
        nc++;
    char **argv = calloc((size_t)(nf + nc + 3), sizeof(char *));
    char *list = NULL;
    if (argv && n0->first[0] && asprintf(&list, "--nodelist=%s", n0->first) < 0)
        list = NULL;
    for (int i = 0; argv && i < nf; i++)
        argv[a++] = strdup(fixed[i]);
    if (argv && list)
        argv[a++] = list;
    if (argv && dv__srun_has_overlap())
        argv[a++] = strdup("--overlap");
    for (int i = 0; argv && i < nc; i++)
        argv[a++] = strdup(cmd[i]);
    for (int i = 0; argv && i < a; i++)
        if (!argv[i]) {
            dv__launch_argv_free(argv);
            return NULL;
        }
    return argv;
}

/* Fork argv in a process group of its own, stdin /dev/null when ours is a
 * terminal (a background group reading it would stop), its stderr on
 * err_w (-1: ours), stop when this process dies. */
static pid_t spawn_node0(char **argv, int stop, int err_w, int *exec_errno)
{
    int p[2];
    sigset_t none;
    sigemptyset(&none);
    *exec_errno = 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t me = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, stop);
        if (getppid() != me)
            _exit(127);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int nul = isatty(0) ? open("/dev/null", O_RDONLY) : -1;
        if ((nul >= 0 && dup2(nul, 0) < 0) ||
            (err_w >= 0 && dup2(err_w, 2) < 0))
            _exit(127);
        execvp(argv[0], argv);
        int e = errno;
        if (write(p[1], &e, sizeof(e)) < 0)
            _exit(127);
        _exit(127);
    }
    close(p[1]);
    if (pid > 0) {
        setpgid(pid, pid); /* as the child does: whichever runs first */
        if (read(p[0], exec_errno, sizeof(int)) != sizeof(int))
            *exec_errno = 0;
    }
    close(p[0]);
    return pid;
}

/* srun's stderr, passed on but for srun's own lines that only repeat what
 * drover run says anyway: node 0's exit code (drover run's own), and that
 * --cpu-bind=none means nothing to a Slurm without task binding. */
struct err_filter {
    int fd;      /* read end, -1 once at EOF */
    int in_head; /* at a line's start, or holding what may be srun's line */
    size_t len;
    char line[512];
};

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(2, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

static int srun_noise(const char *l, size_t n)
{
    static const char code[] = ": task 0: Exited with exit code ";
    char s[sizeof(((struct err_filter *)0)->line) + 1];
    memcpy(s, l, n);
    s[n] = 0;
    const char *c = strstr(s, code);
    if (!strcmp(s, "srun: cluster configuration lacks support for cpu "
                   "binding\n"))
        return 1;
    return !strncmp(s, "srun: error: ", 13) && c &&
           strspn(c + sizeof(code) - 1, "0123456789") ==
               strlen(c + sizeof(code) - 1) - 1;
}

static void filter_bytes(struct err_filter *f, const char *p, size_t n)
{
    static const char pre[] = "srun: ";
    while (n > 0) {
        if (!f->in_head) {
            const char *e = memchr(p, '\n', n);
            size_t k = e ? (size_t)(e - p) + 1 : n;
            write_all(p, k);
            p += k;
            n -= k;
            f->in_head = e != NULL;
            continue;
        }
        char c = f->line[f->len++] = *p++;
        n--;
        size_t m = f->len < sizeof(pre) - 1 ? f->len : sizeof(pre) - 1;
        if (memcmp(f->line, pre, m) ||
            (c != '\n' && f->len == sizeof(f->line))) {
            write_all(f->line, f->len);
            f->in_head = c == '\n';
            f->len = 0;
        } else if (c == '\n') {
            if (!srun_noise(f->line, f->len))
                write_all(f->line, f->len);
            f->len = 0;
        }
    }
}

/* Read what is there (wait up to ms for it); at EOF pass on what is held. */
static void filter_read(struct err_filter *f, int ms)
{
    struct pollfd pf = {f->fd, POLLIN, 0};
    if (f->fd < 0 || poll(&pf, 1, ms) <= 0)
        return;
    char buf[4096];
    ssize_t k = read(f->fd, buf, sizeof(buf));
    if (k > 0) {
        filter_bytes(f, buf, (size_t)k);
    } else if (k == 0 || errno != EINTR) {
        write_all(f->line, f->len);
        f->len = 0;
        close(f->fd);
        f->fd = -1;
    }
}

/* Wait for pid; a stop signal here goes on to its group as stop (a second
 * one, or grace + 10 s without an end: SIGKILL). *signo: the first one. */
static int supervise(pid_t pid, int stop, double grace, struct err_filter *f,
                     int *signo)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    double kill_at = 0, drain_end;
    int st = 0, done = 0;
    *signo = 0;
    while (!done) {
        pid_t w;
        int ws;
        while ((w = waitpid(-1, &ws, WNOHANG)) > 0) /* orphans come here too */
            if (w == pid)
                st = ws, done = 1;
        if (done)
            break;
        if (f->fd >= 0)
            filter_read(f, 100);
        struct timespec ts = {0, f->fd >= 0 ? 0 : 100 * 1000 * 1000};
        int s = sigtimedwait(&set, NULL, &ts);
        if (s == SIGINT || s == SIGTERM || s == SIGHUP) {
            if (!*signo) {
                *signo = s;
                kill(-pid, stop);
                kill_at = mn_now() + grace + 10;
            } else {
                kill_at = mn_now();
            }
        }
        if (kill_at && mn_now() >= kill_at)
            kill(-pid, SIGKILL);
    }
    /* What it wrote before its end, then what it left in its group. */
    for (drain_end = mn_now() + 2; f->fd >= 0 && mn_now() < drain_end;)
        filter_read(f, 100);
    kill(-pid, SIGKILL);
    return st;
}

int mn_node0_launch(const struct mn_head_opts *o, const mn_node0_t *n0,
                    char *const *words, double grace, dv_error_t *err)
{
    char **cmd = node0_cmd(n0, words), **argv = NULL;
    if (!cmd)
        return dv__errsys(err, "node 0's command line");
    if (o->slurm)
        argv = srun_cmd(n0, cmd);
    else
        argv = dv__launch_expand(o->launch_cmd ? o->launch_cmd
                                               : DV_LAUNCH_DEFAULT_TEMPLATE,
                                 n0->first, cmd, err);
    dv__launch_argv_free(cmd);
    if (!argv)
        return o->slurm ? dv__errsys(err, "srun: command line") : -1;
    /* srun ends its tasks with SIGKILL on SIGTERM; SIGUSR1 it passes on,
     * and node 0's drover run takes it for SIGTERM. */
    int stop = o->slurm ? SIGUSR1 : SIGTERM, exec_errno, signo,
        ep[2] = {-1, -1};
    struct err_filter f = {-1, 1, 0, {0}};
    if (o->slurm && pipe2(ep, O_CLOEXEC) == 0)
        f.fd = ep[0];
    pid_t pid = spawn_node0(argv, stop, ep[1], &exec_errno);
    if (ep[1] >= 0)
        close(ep[1]);
    if (pid < 0 || exec_errno) {
        int e = pid < 0 ? errno : exec_errno;
        if (pid > 0)
            waitpid(pid, NULL, 0);
        dv__errprintf(err, e, "%s: launch failed: %s: %s",
                      n0->first[0] ? n0->first : "node 0", argv[0],
                      strerror(e));
        dv__launch_argv_free(argv);
        if (f.fd >= 0)
            close(f.fd);
        return -1;
    }
    dv__launch_argv_free(argv);
    int st = supervise(pid, stop, grace, &f, &signo);
    if (signo)
        return 128 + signo;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL);
}

/* Until stdout or stderr has no reader (poll says POLLERR or POLLHUP: a
 * pipe or socket whose other end closed, a terminal hung up; a file never
 * does), then SIGTERM, blocked, for the supervision. */
static void *watch_output(void *arg)
{
    (void)arg;
    struct pollfd pf[2] = {{1, 0, 0}, {2, 0, 0}};
    for (;;) {
        int k = poll(pf, 2, -1);
        if (k < 0 && errno != EINTR)
            return NULL;
        for (int i = 0; i < 2 && k > 0; i++)
            if (pf[i].revents & (POLLERR | POLLHUP)) {
                kill(getpid(), SIGTERM);
                return NULL;
            }
    }
}

int mn_node0_watch_output(void)
{
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&th, &at, watch_output, NULL);
    pthread_attr_destroy(&at);
    return r == 0 ? 0 : (errno = r, -1);
}
