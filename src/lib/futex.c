/* Blocking helpers of the shared-memory objects: process-shared futexes,
 * absolute CLOCK_MONOTONIC deadlines, and the liveness check that lets a
 * waiter recover from a process killed in the middle of an operation. */
#include "lib/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int dv__futex_wait(uint32_t *word, uint32_t val, const struct timespec *dl)
{
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
    long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, val, dl, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    return r == 0 ? 0 : -1;
}

void dv__futex_wake(uint32_t *word, int n)
{
    syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Until when this process does not spin (monotonic ns): a spinner that
 * was taken off its CPU found the machine busy, and on a busy machine a
 * spinner only delays the process it waits for, while a sleeper is woken
 * ahead of busy processes. */
static _Atomic int64_t spin_off_until;

bool dv__spin_while(const uint32_t *word, uint32_t old)
{
    int64_t last = now_ns();
    if (last < atomic_load_explicit(&spin_off_until, memory_order_relaxed))
        return false;
    for (int i = 1; i <= DV__SPIN_CHECKS; i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != old)
            return true;
        if (i % DV__SPIN_YIELD != 0) {
            dv__cpu_relax();
            continue;
        }
        sched_yield();
        int64_t t = now_ns();
        if (t - last > DV__SPIN_GAP_NS) {
            atomic_store_explicit(&spin_off_until, t + DV__SPIN_OFF_NS,
                                  memory_order_relaxed);
            return __atomic_load_n(word, __ATOMIC_ACQUIRE) != old;
        }
        last = t;
    }
    return false;
}

bool dv__deadline(double timeout_s, struct timespec *dl)
{
    if (timeout_s < 0)
        return false;
    clock_gettime(CLOCK_MONOTONIC, dl);
    if (timeout_s > 1e9)
        timeout_s = 1e9;
    time_t sec = (time_t)timeout_s;
    long ns = (long)((timeout_s - (double)sec) * 1e9);
    dl->tv_sec += sec;
    dl->tv_nsec += ns;
    if (dl->tv_nsec >= 1000000000L) {
        dl->tv_sec++;
        dl->tv_nsec -= 1000000000L;
    }
    return true;
}

bool dv__deadline_passed(const struct timespec *dl)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > dl->tv_sec ||
           (now.tv_sec == dl->tv_sec && now.tv_nsec >= dl->tv_nsec);
}

struct timespec dv__deadline_min(const struct timespec *dl, long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    if (dl && (dl->tv_sec < t.tv_sec ||
               (dl->tv_sec == t.tv_sec && dl->tv_nsec < t.tv_nsec)))
        return *dl;
    return t;
}

char dv__pid_state(pid_t pid)
{
    if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
        return 0;
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : '?';
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return '?';
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold any byte */
    if (!p || p[1] != ' ' || !p[2])
        return '?';
    return p[2];
}

/* A killed process stays a zombie until its parent reaps it, and kill(pid,
 * 0) still succeeds on it: its state from /proc tells. */
bool dv__pid_alive(pid_t pid)
{
    char st = dv__pid_state(pid);
    return st && st != 'Z' && st != 'X';
}

static pid_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void refresh_pid(void)
{
    __atomic_store_n(&cached_pid, getpid(), __ATOMIC_RELAXED);
}

static void init_pid(void)
{
    refresh_pid();
    pthread_atfork(NULL, NULL, refresh_pid);
}

pid_t dv__self_pid(void)
{
    pthread_once(&pid_once, init_pid);
    return __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);
}

int dv__pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    return pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
#else
    (void)pid;
    return -1;
#endif
}
