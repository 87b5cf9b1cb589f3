/* The runtime directory of a job on one node (<tmp>/drover.<job>, mode
 * 0700: agent.pid, agent.lock, the node table, the data token, sockets)
 * and the removal of what a job leaves: its /dev/shm segments and that
 * directory.
 *
 * A job must not outlive its agent's death (SIGKILL, the OOM killer)
 * with its memory and token. The agent holds a record lock on agent.lock
 * for as long as it lives, so anyone can tell a live job from an
 * abandoned one. When it makes the directory it forks a cleaner: a small
 * process that waits for that lock and, once it gets it (the agent died
 * without cleaning up), kills the job's processes that are left, then
 * removes the segments and the directory. At a normal end the agent
 * cleans up itself and stops its cleaner. Every start also sweeps the
 * directories of dead agents, in case a cleaner was killed too. */
#define _GNU_SOURCE
#include "lib/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"

/* The directory this process made. Forked children inherit a copy but do
 * not own it: owner is compared with getpid(). */
static struct {
    pid_t owner, cleaner;
    int lockfd;
    char dir[PATH_MAX];
} rd = {0, 0, -1, ""};

static const char *tmp_dir(void)
{
    const char *tmp = getenv("DROVER_TMPDIR");
    if (!tmp || !*tmp)
        tmp = getenv("TMPDIR");
    return tmp && *tmp ? tmp : "/tmp";
}

static void remove_tree(int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 || depth > 8)
            continue;
        int sub = openat(dirfd(d), e->d_name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            remove_tree(sub, depth + 1);
            unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        }
    }
    closedir(d);
}

static void remove_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        remove_tree(fd, 0);
    rmdir(dir);
}

/* Unlink /dev/shm/drover.<node_id>.* (node_id: dv__job_node_id's). */
static void remove_segments(const char *node_id)
{
    char prefix[128];
    int n = snprintf(prefix, sizeof(prefix), "drover.%s.", node_id);
    if (n < 0 || (size_t)n >= sizeof(prefix))
        return;
    DIR *d = opendir("/dev/shm");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, (size_t)n))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/* A write lock on the whole file (cmd F_SETLK or F_SETLKW). A record lock,
 * not flock: it belongs to the process and is not inherited by fork, so a
 * task that outlives its agent does not keep the job looking alive. */
static int lock_file(int fd, int cmd)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    return fcntl(fd, cmd, &fl);
}

/* Whether the environment block env[0..len) holds the entry want. */
static int has_entry(const char *env, size_t len, const char *want, size_t wl)
{
    for (size_t i = 0; i < len;) {
        const char *e = env + i;
        size_t l = strnlen(e, len - i);
        if (l == wl && !memcmp(e, want, wl))
            return 1;
        i += l + 1;
    }
    return 0;
}

/* SIGKILL every process of this user (but this one) whose environment
 * names rundir as its job's: the job's processes that neither a
 * parent-death signal nor anyone else ends (orphans of tasks). Returns
 * how many it found. */
static int kill_job(const char *rundir)
{
    static char env[1 << 18];
    char want[PATH_MAX + 32];
    int wl = snprintf(want, sizeof(want), "%s=%s", DV_ENV_RUNDIR, rundir);
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;
    while (wl > 0 && d && (e = readdir(d))) {
        char path[64], *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        size_t len = 0;
        ssize_t k = 0;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid())
            while (len < sizeof(env) &&
                   (k = read(fd, env + len, sizeof(env) - len)) > 0)
                len += (size_t)k;
        if (fd >= 0)
            close(fd);
        if (has_entry(env, len, want, (size_t)wl) &&
            kill((pid_t)pid, SIGKILL) == 0)
            found++;
    }
    if (d)
        closedir(d);
    return found;
}

/* The cleaner's descriptors: stdio on /dev/null (it must not keep a pipe
 * of the job's output open), the lock as fd 3, nothing else. */
static int cleaner_fds(int lockfd)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        return -1;
    if (dup2(lockfd, 3) < 0)
        return -1;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 4u, ~0u, 0u) == 0)
        return 0;
#endif
    for (int i = 4; i < 4096; i++)
        close(i);
    return 0;
}

/* Make the cleaner's command line read "drover-cleaner", not the agent's
 * (that `pgrep -f` for an agent finds the agent alone): it is rewritten in
 * place, in the cleaner's copy of the agent's memory (setproctitle's way;
 * the area's bounds are fields 48 and 49 of /proc/self/stat). */
static void cleaner_title(void)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    ssize_t k = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (k <= 0)
        return;
    buf[k] = 0;
    char *p = strrchr(buf, ')');
    unsigned long start = 0, end = 0;
    for (int field = 2; p && field < 49 && (p = strchr(p + 1, ' '));) {
        if (++field == 48)
            start = strtoul(p + 1, NULL, 10);
        else if (field == 49)
            end = strtoul(p + 1, NULL, 10);
    }
    if (!start || end <= start)
        return;
    static const char title[] = "drover-cleaner";
    size_t n = end - start, t = sizeof(title) - 1;
    memset((char *)start, 0, n);
    memcpy((char *)start, title, t < n - 1 ? t : n - 1);
}

/* The cleaner (a child of the agent, in a session of its own so that a
 * signal to the job's process group spares it, every signal blocked). */
static void cleaner_main(void)
{
    setsid();
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    prctl(PR_SET_NAME, "drover-cleaner");
    cleaner_title();
    if (cleaner_fds(rd.lockfd) < 0)
        _exit(1);
    while (lock_file(3, F_SETLKW) < 0)
        if (errno != EINTR)
            _exit(1);
    /* The agent is gone. Its directory still there (not removed, nor a
     * new job's of the same name) means it did not clean up. */
    char path[PATH_MAX + 16];
    struct stat a, b;
    snprintf(path, sizeof(path), "%s/agent.lock", rd.dir);
    if (fstat(3, &a) < 0 || stat(path, &b) < 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino)
        _exit(0);
    for (int i = 0; i < 50 && kill_job(rd.dir) > 0; i++)
        usleep(100000);
    remove_segments(dv__job_node_id());
    remove_dir(rd.dir);
    _exit(0);
}

/* agent.lock (locked, kept open), then agent.pid: a directory with an
 * agent.pid has had its lock taken. */
static int own_dir(const char *dir, dv_error_t *err)
{
    char path[PATH_MAX + 16], pid[24];
    snprintf(path, sizeof(path), "%s/agent.lock", dir);
    rd.lockfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (rd.lockfd < 0 || lock_file(rd.lockfd, F_SETLK) < 0)
        return dv__errsys(err, "runtime dir: %s", path);
    snprintf(path, sizeof(path), "%s/agent.pid", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int k = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    int ok = fd >= 0 && write(fd, pid, (size_t)k) == k;
    if (!ok)
        dv__errsys(err, "runtime dir: %s", path);
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

/* Whether the agent of the directory dfd is dead. Then *lockfd is its
 * lock, held while the sweep removes it (or -1: a directory of an older
 * drover, with agent.pid only, whose process is gone). */
static int owner_dead(int dfd, int *lockfd)
{
    struct stat st;
    *lockfd = -1;
    if (fstatat(dfd, "agent.pid", &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0; /* being made */
    int fd = openat(dfd, "agent.lock", O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        if (lock_file(fd, F_SETLK) == 0) {
            *lockfd = fd;
            return 1;
        }
        close(fd);
        return 0;
    }
    if (errno != ENOENT ||
        (fd = openat(dfd, "agent.pid", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return 0;
    char buf[24] = "";
    ssize_t k = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    long pid = k > 0 ? strtol(buf, NULL, 10) : 0;
    return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* Remove the directories (and segments, and processes) of this user's
 * jobs under tmp whose agent died. */
static void sweep(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "drover.", 7) || !e->d_name[7])
            continue;
        int dfd = openat(dirfd(d), e->d_name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        int lockfd;
        if (dfd < 0)
            continue;
        if (fstat(dfd, &st) < 0 || st.st_uid != geteuid() ||
            !owner_dead(dfd, &lockfd)) {
            close(dfd);
            continue;
        }
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
        for (int i = 0; i < 20 && kill_job(path) > 0; i++)
            usleep(100000);
        remove_segments(e->d_name + 7);
        remove_tree(dfd, 0);
        unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        if (lockfd >= 0)
            close(lockfd);
    }
    if (d)
        closedir(d);
}

/* Whether dir is being cleaned (its lock is free, or held by another
 * process than its agent: a cleaner or a sweep), not a live job's. */
static int being_cleaned(const char *dir)
{
    char path[PATH_MAX + 16], buf[24] = "";
    snprintf(path, sizeof(path), "%s/agent.pid", dir);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t k = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    snprintf(path, sizeof(path), "%s/agent.lock", dir);
    if (k <= 0 || (fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return 0;
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    int r = fcntl(fd, F_GETLK, &fl) == 0 &&
            (fl.l_type == F_UNLCK || fl.l_pid != strtol(buf, NULL, 10));
    close(fd);
    return r;
}

/* mkdir, after the sweep; a directory of the same job still being cleaned
 * up after its agent's death (a job started again at once) is waited for,
 * 5 s at most. */
static int make_dir(const char *tmp, const char *dir)
{
    sweep(tmp);
    for (int i = 0; mkdir(dir, 0700) < 0; i++) {
        int e = errno;
        if (e != EEXIST || i == 100 || !being_cleaned(dir)) {
            errno = e;
            return -1;
        }
        usleep(50000);
        sweep(tmp);
    }
    return 0;
}

int dv__rundir_create(char *buf, size_t cap, dv_error_t *err)
{
    const char *tmp = tmp_dir();
    int n = snprintf(buf, cap, "%s/drover.%s", tmp, dv__job_node_id());
    if (n < 0 || (size_t)n >= cap || (size_t)n >= sizeof(rd.dir))
        return dv__errprintf(err, ENAMETOOLONG, "runtime dir: path too long");
    if (make_dir(tmp, buf) < 0)
        return dv__errsys(err, "runtime dir: %s", buf);
    snprintf(rd.dir, sizeof(rd.dir), "%s", buf);
    pid_t pid = -1;
    if (own_dir(buf, err) == 0 && (pid = fork()) < 0)
        dv__errsys(err, "runtime dir: cannot start its cleaner");
    if (pid == 0)
        cleaner_main();
    if (pid < 0) {
        int e = errno;
        if (rd.lockfd >= 0)
            close(rd.lockfd);
        rd.lockfd = -1;
        remove_dir(buf);
        errno = e;
        return -1;
    }
    rd.owner = getpid();
    rd.cleaner = pid;
    return 0;
}

pid_t dv__rundir_cleaner(void)
{
    return rd.owner == getpid() ? rd.cleaner : 0;
}

/* At a normal end: the cleaner is not needed any more. */
static void stop_cleaner(void)
{
    pid_t c = rd.cleaner;
    int st;
    rd.cleaner = 0;
    /* Still our unreaped child (alive or a zombie): its pid is not reused. */
    if (c > 0 && waitpid(c, &st, WNOHANG) == 0) {
        kill(c, SIGKILL);
        while (waitpid(c, &st, 0) < 0 && errno == EINTR)
            ;
    }
}

void dv__job_cleanup(const char *rundir)
{
    int e = errno;
    remove_segments(dv__job_node_id());
    if (rundir && *rundir)
        remove_dir(rundir);
    if (rundir && rd.owner == getpid() && !strcmp(rundir, rd.dir)) {
        stop_cleaner();
        close(rd.lockfd);
        rd.lockfd = -1;
        rd.owner = 0;
    }
    errno = e;
}
