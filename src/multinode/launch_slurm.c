/* What the Slurm launcher takes from the allocation and from srun (see
 * launch.h): the CPUs of each node (SLURM_JOB_CPUS_PER_NODE's compressed
 * form), whether srun has --overlap (its version), and the srun command
 * line. The variable comes from the site's Slurm, so a form drover does
 * not know is an error naming it, never a guess. */
#define _GNU_SOURCE
#include "multinode/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"

#define CPUS_VAR "SLURM_JOB_CPUS_PER_NODE"

extern char **environ;

__attribute__((format(printf, 3, 4))) static int
cpus_bad(dv_error_t *err, const char *value, const char *fmt, ...)
{
    char shown[64], why[128];
    size_t k = 0;
    for (; value[k] && k < sizeof(shown) - 1; k++)
        shown[k] = value[k] > ' ' && value[k] <= '~' ? value[k] : '?';
    shown[k] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return dv__errprintf(err, EINVAL, "%s '%s'%s: %s", CPUS_VAR, shown,
                         value[k] ? "..." : "", why);
}

/* Decimal digits at *p (moved past them), at most INT_MAX; else -1. */
static long number(const char **p)
{
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((v = v * 10 + (*s - '0')) > INT_MAX)
            return -1;
    *p = s;
    return v;
}

int dv__slurm_cpus_parse(const char *value, int nalloc, int *out,
                         dv_error_t *err)
{
    const char *p = value ? value : "";
    long got = 0;
    if (!*p)
        return cpus_bad(err, p, "empty");
    for (;;) {
        long c = number(&p), k = 1;
        if (c < 1 || c > DV_SLOTS_MAX)
            return cpus_bad(err, value, "a CPU count is not a number in 1..%d",
                            DV_SLOTS_MAX);
        if (*p == '(') {
            k = p[1] == 'x' ? (p += 2, number(&p)) : -1;
            if (k < 1 || *p != ')')
                return cpus_bad(err, value, "a repeat is not (xK), K >= 1");
            p++;
        }
        if (k > nalloc - got)
            return cpus_bad(err, value, "more nodes than the allocation's %d",
                            nalloc);
        for (long i = 0; i < k; i++)
            out[got++] = (int)c;
        if (!*p)
            break;
        if (*p++ != ',')
            return cpus_bad(err, value, "nodes are not separated by ','");
    }
    if (got != nalloc)
        return cpus_bad(err, value, "%ld node%s, the allocation has %d", got,
                        got == 1 ? "" : "s", nalloc);
    return 0;
}

int dv__slurm_node_cpus(const int *alloc, int nalloc, int head, int *out, int n)
{
    if (!alloc || !out || n < 1 || n > nalloc || head < 0 || head >= nalloc) {
        errno = EINVAL;
        return -1;
    }
    out[0] = alloc[head];
    for (int i = 1, a = 0; i < n; i++, a++) {
        if (a == head)
            a++;
        out[i] = alloc[a];
    }
    return 0;
}

int dv__slurm_has_overlap(const char *text)
{
    if (!text)
        return 0;
    const char *p = text + strcspn(text, "0123456789");
    char *end;
    long major = strtol(p, &end, 10), minor = 0;
    if (end == p)
        return 0;
    if (*end == '.')
        minor = strtol(end + 1, NULL, 10);
    return major > 20 || (major == 20 && minor >= 11);
}

/* Start `srun --version` with its stdout on fd, default signal handling
 * (whatever this process blocks) and nothing else open on 0 and 2. */
static int spawn_version(int fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none;
    char *argv[] = {"srun", "--version", NULL};
    sigemptyset(&none);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&at);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawnp(pid, "srun", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return rc;
}

int dv__srun_has_overlap(void)
{
    int fd[2], saved = errno;
    pid_t pid;
    char buf[256];
    size_t len = 0;
    if (pipe2(fd, O_CLOEXEC) < 0)
        return 0;
    int rc = spawn_version(fd[1], &pid);
    close(fd[1]);
    while (rc == 0 && len < sizeof(buf) - 1) {
        ssize_t k = read(fd[0], buf + len, sizeof(buf) - 1 - len);
        if (k > 0)
            len += (size_t)k;
        else if (k == 0 || errno != EINTR)
            break;
    }
    close(fd[0]);
    buf[len] = '\0';
    while (rc == 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    errno = saved;
    return rc == 0 && dv__slurm_has_overlap(buf);
}

int dv__srun_argv(int nodes, const char *exclude, int overlap, char *const *cmd,
                  char *nodes_arg, char **argv, int cap)
{
    /* No --kill-on-bad-exit: a dead agent must not take the others with
     * it, so that the heartbeats name the node that failed. */
    static char *const fixed[] = {"--ntasks-per-node=1", "--cpu-bind=none",
                                  "--kill-on-bad-exit=0", "--input=all"};
    int nf = (int)(sizeof(fixed) / sizeof(fixed[0])), ncmd = 0, a = 0;
    while (cmd && cmd[ncmd])
        ncmd++;
    if (cap < 3 + nf + 1 + 2 + ncmd + 1) {
        errno = E2BIG;
        return -1;
    }
    snprintf(nodes_arg, 32, "--nodes=%d", nodes);
    snprintf(nodes_arg + 32, 32, "--ntasks=%d", nodes);
    argv[a++] = "srun";
    argv[a++] = nodes_arg;
    argv[a++] = nodes_arg + 32;
    for (int i = 0; i < nf; i++)
        argv[a++] = fixed[i];
    if (overlap)
        argv[a++] = "--overlap";
    if (exclude && *exclude) {
        argv[a++] = "--exclude";
        argv[a++] = (char *)exclude;
    }
    for (int i = 0; i < ncmd; i++)
        argv[a++] = cmd[i];
    argv[a] = NULL;
    return a;
}

/* ---- SLURM_JOB_NODELIST ---- */

#define NODELIST_MAX (1 << 20)

/* Append name to l (a copy). */
static int list_add(dv_hostlist_t *l, const char *name, int *cap)
{
    if (l->n == *cap) {
        int c = *cap ? *cap * 2 : 16;
        char **h = realloc(l->hosts, (size_t)c * sizeof(char *));
        if (!h)
            return -1;
        l->hosts = h;
        *cap = c;
    }
    if (!(l->hosts[l->n] = strdup(name)))
        return -1;
    l->n++;
    return 0;
}

/* Expand one item (no top-level ','): text before the first '[', each
 * value of its ranges, then the rest expanded the same way. done: the part
 * already fixed, of length dl. */
static int expand_item(const char *s, size_t len, char *done, size_t dl,
                       dv_hostlist_t *l, int *cap, const char **why)
{
    const char *open = memchr(s, '[', len);
    if (!open) {
        if (dl + len > DV_HOST_MAX)
            return *why = "a name is too long", -1;
        memcpy(done + dl, s, len);
        done[dl + len] = 0;
        if (l->n >= NODELIST_MAX)
            return *why = "too many nodes", -1;
        return list_add(l, done, cap) < 0 ? (*why = "out of memory", -1) : 0;
    }
    size_t pre = (size_t)(open - s);
    const char *close = memchr(open, ']', len - pre);
    if (!close || dl + pre > DV_HOST_MAX)
        return *why = "a '[' without its ']'", -1;
    memcpy(done + dl, s, pre);
    const char *p = open + 1, *rest = close + 1;
    size_t rlen = len - (size_t)(rest - s);
    while (p < close) {
        const char *q = p;
        long lo = number(&q), hi = lo;
        int width = (int)(q - p);
        if (lo >= 0 && *q == '-') {
            q++;
            hi = number(&q);
        }
        if (lo < 0 || hi < lo || (*q != ',' && q != close))
            return *why = "a range is not N, N-M or a list of them", -1;
        for (long v = lo; v <= hi; v++) {
            char num[24];
            int k = snprintf(num, sizeof(num), "%0*ld", width, v);
            if (dl + pre + (size_t)k > DV_HOST_MAX)
                return *why = "a name is too long", -1;
            memcpy(done + dl + pre, num, (size_t)k);
            if (expand_item(rest, rlen, done, dl + pre + (size_t)k, l, cap,
                            why) < 0)
                return -1;
        }
        p = q + (q != close);
    }
    return 0;
}

int dv__slurm_nodelist_expand(const char *value, dv_hostlist_t *out,
                              dv_error_t *err)
{
    const char *p = value ? value : "", *why = "empty";
    char done[DV_HOST_MAX + 1];
    int cap = 0;
    memset(out, 0, sizeof(*out));
    int ok = *p != 0;
    while (ok && *p) {
        size_t len = 0;
        for (int depth = 0; p[len] && (depth || p[len] != ','); len++)
            depth += p[len] == '[' ? 1 : p[len] == ']' ? -1 : 0;
        if (!len) {
            why = "an empty name";
            ok = 0;
        } else if (expand_item(p, len, done, 0, out, &cap, &why) < 0) {
            ok = 0;
        } else if (*(p += len) == ',' && !*++p) {
            why = "an empty name";
            ok = 0;
        }
    }
    if (ok)
        why = NULL;
    if (why || out->n == 0) {
        dv__hostlist_free(out);
        char shown[64];
        size_t k = 0;
        for (const char *v = value ? value : ""; v[k] && k < 63; k++)
            shown[k] = v[k] > ' ' && v[k] <= '~' ? v[k] : '?';
        shown[k] = 0;
        return dv__errprintf(err, EINVAL, "SLURM_JOB_NODELIST '%s': %s", shown,
                             why ? why : "empty");
    }
    return 0;
}
