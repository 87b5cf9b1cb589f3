/* The hostfile launcher's pieces (see launch.h): the host file, the
 * remote-exec template, and starting one launch command with the job's
 * keys on its stdin. Host files and templates come from the user, so every
 * error names the line or word at fault. */
#define _GNU_SOURCE
#include "multinode/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"

#define HOSTFILE_MAX (1u << 20)

void dv__hostlist_free(dv_hostlist_t *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++)
        free(l->hosts[i]);
    free(l->hosts);
    free(l->slots);
    l->hosts = NULL;
    l->slots = NULL;
    l->n = 0;
}

extern char **environ;

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
           c == ':';
}

int dv__host_name_valid(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++)
        if (!host_char(name[n]))
            return 0;
    return n >= 1 && n <= DV_HOST_MAX && name[0] != '-';
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return n > 0;
}

/* A CPU count: decimal digits, 1..DV_SLOTS_MAX; else -1. */
static int parse_count(const char *p, size_t n)
{
    long v = 0;
    if (!all_digits(p, n) || n > 8)
        return -1;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v >= 1 && v <= DV_SLOTS_MAX ? (int)v : -1;
}

static int bad_count(dv_error_t *err, int lineno, const char *what,
                     const char *p, size_t n)
{
    return dv__errprintf(err, EINVAL,
                         "line %d: %s: '%.*s' is not a number in 1..%d", lineno,
                         what, (int)(n > 40 ? 40 : n), p, DV_SLOTS_MAX);
}

/* The first word: a host name, perhaps with MPICH's ":N" (one ':' only,
 * so that names with several, as IPv6 addresses have, stay names). */
static int host_word(const char *p, size_t n, int lineno, char *host,
                     int *slots, dv_error_t *err)
{
    for (size_t i = 0; i < n; i++)
        if (!host_char(p[i]))
            return dv__errprintf(err, EINVAL,
                                 "line %d: character 0x%02x in a host name",
                                 lineno, (unsigned)(unsigned char)p[i]);
    const char *colon = memchr(p, ':', n);
    size_t after = colon ? n - (size_t)(colon + 1 - p) : 0;
    if (colon && all_digits(colon + 1, after)) {
        if ((*slots = parse_count(colon + 1, after)) < 0)
            return bad_count(err, lineno, "host:N", colon + 1, after);
        n = (size_t)(colon - p);
    }
    if (!n || n > DV_HOST_MAX || p[0] == '-')
        return dv__errprintf(err, EINVAL, "line %d: not a host name", lineno);
    memcpy(host, p, n);
    host[n] = '\0';
    return 0;
}

/* A word after the host: Open MPI's slots=N or max_slots=M (whose
 * oversubscription limit drover has no use for). */
static int host_attr(const char *w, size_t n, int lineno, int *slots,
                     dv_error_t *err)
{
    const char *eq = memchr(w, '=', n);
    if (!eq)
        return dv__errprintf(err, EINVAL, "line %d: one host a line", lineno);
    size_t kl = (size_t)(eq - w), vl = n - kl - 1;
    int slot = kl == 5 && !memcmp(w, "slots", 5);
    int max =
        kl == 9 && (!memcmp(w, "max_slots", 9) || !memcmp(w, "max-slots", 9));
    if (!slot && !max)
        return dv__errprintf(err, EINVAL,
                             "line %d: unknown key '%.*s' (known: slots, "
                             "max_slots)",
                             lineno, (int)(kl > 40 ? 40 : kl), w);
    int v = parse_count(eq + 1, vl);
    if (v < 0)
        return bad_count(err, lineno, slot ? "slots" : "max_slots", eq + 1, vl);
    if (slot && *slots)
        return dv__errprintf(err, EINVAL, "line %d: slots given twice", lineno);
    if (slot)
        *slots = v;
    return 0;
}

/* One line without its comment, trimmed, into host (or "" when blank)
 * and the CPUs it gives into *slots (0: none). */
static int parse_line(const char *p, size_t n, int lineno, char *host,
                      int *slots, dv_error_t *err)
{
    const char *hash = memchr(p, '#', n);
    if (hash)
        n = (size_t)(hash - p);
    while (n && is_blank(*p))
        p++, n--;
    while (n && is_blank(p[n - 1]))
        n--;
    host[0] = '\0';
    *slots = 0;
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_blank(p[i]) && (p[i] <= ' ' || p[i] > '~'))
            return dv__errprintf(err, EINVAL,
                                 "line %d: character 0x%02x in a host name",
                                 lineno, (unsigned)(unsigned char)p[i]);
    size_t w = 0;
    while (w < n && !is_blank(p[w]))
        w++;
    if (host_word(p, w, lineno, host, slots, err) < 0)
        return -1;
    for (size_t i = w; i < n; i += w) {
        while (i < n && is_blank(p[i]))
            i++;
        for (w = 0; i + w < n && !is_blank(p[i + w]);)
            w++;
        if (host_attr(p + i, w, lineno, slots, err) < 0)
            return -1;
    }
    return 0;
}

/* The hosts seen so far: open addressing over their indices (+1; 0 is a
 * free slot), so that a large host file is checked in linear time. */
struct seen {
    int *slot;
    size_t mask;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int seen_init(struct seen *t, size_t hosts)
{
    size_t cap = 16;
    while (cap < 2 * hosts)
        cap *= 2;
    t->mask = cap - 1;
    t->slot = calloc(cap, sizeof(*t->slot));
    return t->slot ? 0 : -1;
}

static int add_host(dv_hostlist_t *l, int *lines, struct seen *t,
                    const char *host, int slots, int lineno, dv_error_t *err)
{
    size_t i = (size_t)hash(host) & t->mask;
    for (; t->slot[i]; i = (i + 1) & t->mask) {
        int k = t->slot[i] - 1;
        if (!strcmp(l->hosts[k], host))
            return dv__errprintf(err, EINVAL,
                                 "line %d: duplicate host '%s' (line %d)",
                                 lineno, host, lines[k]);
    }
    char *copy = strdup(host);
    if (!copy)
        return dv__errprintf(err, ENOMEM, "out of memory");
    l->hosts[l->n] = copy;
    l->slots[l->n] = slots;
    lines[l->n++] = lineno;
    t->slot[i] = l->n;
    return 0;
}

int dv__hostfile_parse_text(const char *text, size_t len, dv_hostlist_t *out,
                            dv_error_t *err)
{
    dv_hostlist_t l = {NULL, 0, NULL};
    size_t maxlines = 1;
    for (size_t i = 0; i < len; i++)
        maxlines += text[i] == '\n';
    if (maxlines > INT_MAX / 2)
        return dv__errprintf(err, EINVAL, "more than %d lines", INT_MAX / 2);
    l.hosts = calloc(maxlines, sizeof(*l.hosts));
    l.slots = calloc(maxlines, sizeof(*l.slots));
    int *lines = calloc(maxlines, sizeof(*lines));
    struct seen seen = {NULL, 0};
    char host[DV_HOST_MAX + 1];
    int rc = 0, lineno = 0, slots;
    if (!l.hosts || !l.slots || !lines || seen_init(&seen, maxlines) < 0)
        rc = dv__errprintf(err, ENOMEM, "out of memory");
    for (size_t off = 0; rc == 0 && off < len;) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
        lineno++;
        if (memchr(text + off, '\0', n))
            rc = dv__errprintf(err, EINVAL, "line %d: NUL byte", lineno);
        else if (parse_line(text + off, n, lineno, host, &slots, err) < 0)
            rc = -1;
        else if (host[0])
            rc = add_host(&l, lines, &seen, host, slots, lineno, err);
        off += n + 1;
    }
    if (rc == 0 && l.n == 0)
        rc = dv__errprintf(err, EINVAL, "no host in the file");
    free(lines);
    free(seen.slot);
    if (rc < 0) {
        int e = errno;
        dv__hostlist_free(&l);
        errno = e;
        return -1;
    }
    *out = l;
    return 0;
}

int dv__hostfile_read(const char *path, dv_hostlist_t *out, dv_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dv__errsys(err, "%s", path);
    char *buf = malloc(HOSTFILE_MAX + 1);
    size_t len = 0;
    ssize_t n = 1;
    while (buf && len <= HOSTFILE_MAX &&
           (n = read(fd, buf + len, HOSTFILE_MAX + 1 - len)) > 0)
        len += (size_t)n;
    int e = errno;
    close(fd);
    int rc;
    if (!buf)
        rc = dv__errprintf(err, ENOMEM, "%s: out of memory", path);
    else if (n < 0)
        rc = (errno = e, dv__errsys(err, "%s", path));
    else if (len > HOSTFILE_MAX)
        rc = dv__errprintf(err, EFBIG, "%s: over 1 MiB", path);
    else if ((rc = dv__hostfile_parse_text(buf, len, out, err)) < 0) {
        char reason[sizeof(err->text)];
        if (err) {
            memcpy(reason, err->text, sizeof(reason));
            dv__errprintf(err, EINVAL, "%s: %s", path, reason);
        }
    }
    free(buf);
    return rc;
}

void dv__launch_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

/* A word with every {host} replaced. */
static char *subst_host(const char *w, size_t n, const char *host)
{
    size_t hl = strlen(host), k = 0;
    char *out = malloc(n * (hl + 1) + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        if (n - i >= 6 && !memcmp(w + i, "{host}", 6)) {
            memcpy(out + k, host, hl);
            k += hl, i += 6;
        } else {
            out[k++] = w[i++];
        }
    }
    out[k] = '\0';
    return out;
}

/* Words a remote shell passes through unchanged. */
static int shell_safe(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!host_char(*s) && !strchr("/=@%+,", *s))
            return 0;
    return 1;
}

static int check_cmd(char *const *cmd, size_t *ncmd, dv_error_t *err)
{
    size_t n = 0;
    for (; cmd && cmd[n]; n++)
        if (!shell_safe(cmd[n]))
            return dv__errprintf(err, EINVAL,
                                 "launch: argument '%.60s' has characters a "
                                 "remote shell would change",
                                 cmd[n]);
    if (!n)
        return dv__errprintf(err, EINVAL, "launch: empty command");
    *ncmd = n;
    return 0;
}

static int count_words(const char *t, int *cmd_words)
{
    int n = 0;
    *cmd_words = 0;
    while (*t) {
        while (is_blank(*t) || *t == '\n')
            t++;
        if (!*t)
            break;
        size_t len = strcspn(t, " \t\r\n");
        n++;
        *cmd_words += len == 5 && !memcmp(t, "{cmd}", 5);
        t += len;
    }
    return n;
}

char **dv__launch_expand(const char *tmpl, const char *host, char *const *cmd,
                         dv_error_t *err)
{
    size_t ncmd = 0, k = 0;
    int cmd_words, nwords = count_words(tmpl, &cmd_words);
    if (check_cmd(cmd, &ncmd, err) < 0)
        return NULL;
    if (cmd_words != 1) {
        dv__errprintf(err, EINVAL,
                      "launch command '%.80s': needs {cmd} once, as a word",
                      tmpl);
        return NULL;
    }
    char **argv = calloc((size_t)nwords + ncmd + 1, sizeof(*argv));
    for (const char *t = tmpl; argv && *t;) {
        while (is_blank(*t) || *t == '\n')
            t++;
        size_t len = strcspn(t, " \t\r\n");
        if (!len)
            break;
        if (len == 5 && !memcmp(t, "{cmd}", 5)) {
            for (size_t i = 0; i < ncmd && argv; i++)
                if (!(argv[k++] = strdup(cmd[i])))
                    goto nomem;
        } else if (!(argv[k++] = subst_host(t, len, host))) {
            goto nomem;
        }
        t += len;
    }
    if (argv)
        return argv;
nomem:
    dv__launch_argv_free(argv);
    dv__errprintf(err, ENOMEM, "launch: out of memory");
    return NULL;
}

/* Start argv with stdin on in_fd, stdout on out_fd (-1: /dev/null),
 * stderr on err_fd, default signal mask. posix_spawn: no copy of this
 * process's page tables per launch (fork's cost grows with the head's
 * memory and threads), and an exec failure comes back as its result. */
static int spawn_child(char *const *argv, int in_fd, int out_fd, int err_fd,
                       pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none;
    sigemptyset(&none);
    int r = posix_spawn_file_actions_init(&fa);
    if (r)
        return r;
    if ((r = posix_spawnattr_init(&at))) {
        posix_spawn_file_actions_destroy(&fa);
        return r;
    }
    r = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (!r)
        r = out_fd < 0 ? posix_spawn_file_actions_addopen(&fa, 1, "/dev/null",
                                                          O_WRONLY, 0)
                       : posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (!r)
        r = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    if (!r)
        r = posix_spawnattr_setsigmask(&at, &none);
    sigset_t dfl; /* an agent ignores SIGPIPE; its launches do not */
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    if (!r)
        r = posix_spawnattr_setsigdefault(&at, &dfl);
    if (!r)
        r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    if (!r)
        r = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return r;
}

static int spawn_with_text(char *const *argv, const char *stdin_text,
                           int out_fd, int keep_stdin, dv_launch_child_t *child,
                           dv_error_t *err)
{
    int in[2], er[2];
    size_t tl = strlen(stdin_text);
    if (tl > DV_LAUNCH_STDIN_MAX)
        return dv__errprintf(err, EINVAL, "launch: stdin text over %u KiB",
                             DV_LAUNCH_STDIN_MAX >> 10);
    if (pipe2(in, O_CLOEXEC) < 0)
        return dv__errsys(err, "launch: pipe");
    if (pipe2(er, O_CLOEXEC) < 0) {
        close(in[0]), close(in[1]);
        return dv__errsys(err, "launch: pipe");
    }
    /* Written before the start, while this process holds the read end: it
     * fits the pipe's buffer, and no SIGPIPE can come from a child that
     * exits at once. */
    if (tl >= 65536 && fcntl(in[1], F_SETPIPE_SZ, (int)tl + 1) < 0) {
        int e = errno;
        close(in[0]), close(in[1]), close(er[0]), close(er[1]);
        errno = e;
        return dv__errsys(err, "launch: a pipe for %zu bytes of stdin", tl);
    }
    ssize_t wrote = write(in[1], stdin_text, tl);
    int e = wrote == (ssize_t)tl ? 0 : (errno ? errno : EIO);
    if (!keep_stdin)
        close(in[1]);
    pid_t pid = -1;
    if (!e)
        e = spawn_child(argv, in[0], out_fd, er[1], &pid);
    close(in[0]), close(er[1]);
    if (e) {
        if (keep_stdin)
            close(in[1]);
        close(er[0]);
        errno = e;
        return dv__errsys(err, "launch: %s", argv[0]);
    }
    fcntl(er[0], F_SETFL, O_NONBLOCK);
    if (keep_stdin)
        fcntl(in[1], F_SETFL, O_NONBLOCK);
    child->pid = pid;
    child->err_fd = er[0];
    child->in_fd = keep_stdin ? in[1] : -1;
    return 0;
}

int dv__launch_spawn(char *const *argv, const char *stdin_text, int out_fd,
                     dv_launch_child_t *child, dv_error_t *err)
{
    return spawn_with_text(argv, stdin_text, out_fd, 0, child, err);
}

int dv__launch_spawn_open(char *const *argv, const char *stdin_text, int out_fd,
                          dv_launch_child_t *child, dv_error_t *err)
{
    return spawn_with_text(argv, stdin_text, out_fd, 1, child, err);
}
