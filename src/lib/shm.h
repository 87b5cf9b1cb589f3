/* Internal: shared-memory segments of queues and events, their handles,
 * and the futex, deadline and liveness helpers they block with. Owned by
 * the queue/event module (queue.c, event.c, shm.c, futex.c). */
#ifndef DROVER_LIB_SHM_H
#define DROVER_LIB_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "drover/error.h"
#include "drover/handle.h"

/* Kinds of shared objects, as stored in handles and segment headers. */
enum {
    DV__SHM_QUEUE = 1,
    DV__SHM_EVENT = 2,
    DV__SHM_SEM = 3,     /* sem.c */
    DV__SHM_BARRIER = 4, /* barrier.c */
    DV__SHM_SHARED = 5,  /* shared.c: multiprocessing's Value and Array */
};

/* The first 64 bytes of every segment: what attach checks a handle
 * against. */
struct dv__shm_hdr {
    uint32_t magic;   /* DV__SHM_MAGIC once the creator finished */
    uint32_t version; /* layout version */
    uint32_t kind;    /* DV__SHM_QUEUE or DV__SHM_EVENT */
    int32_t creator;  /* pid of the creating process */
    uint64_t token;   /* random; must match the handle's */
    uint64_t size;    /* bytes of the whole segment */
    uint8_t pad[32];
};

#define DV__SHM_MAGIC 0x7364766fu /* "ovds" */
#define DV__SHM_VERSION 1u

/* A mapping of one segment in this process. */
struct dv__shm {
    struct dv__shm_hdr *hdr; /* start of the mapping */
    size_t size;             /* bytes mapped */
    int fd;                  /* kept open (queues grow their heap with it) */
    pid_t owner;             /* pid that may unlink it (the creator), or 0 */
    char name[32];           /* object name, without "/drover.<job>." */
};

/* Create a new segment of size bytes (sparse: zero pages cost nothing
 * until touched) whose name starts with prefix ('q' or 'e'). Its first
 * DV__SHM_HEAD bytes are allocated here, so that a full /dev/shm is
 * ENOSPC now and not SIGBUS at the first store. The header is filled
 * except for magic, which the caller stores (with release order) after it
 * initialised the rest. Returns 0, or -1 with errno and err. */
#define DV__SHM_HEAD 4096
int dv__shm_create(struct dv__shm *s, uint32_t kind, char prefix, size_t size,
                   dv_error_t *err);

/* Give bytes [off, off + len) of a segment's fd their pages. ENOSPC: no
 * space in /dev/shm, said so in err with what. Returns 0 or -1. */
int dv__shm_allocate(int fd, off_t off, off_t len, const char *what,
                     dv_error_t *err);

/* Map the segment a handle names, check kind and token. ENOENT: gone;
 * EINVAL: a handle that is not well formed, of another kind or job, or
 * whose token does not match. */
int dv__shm_attach(struct dv__shm *s, const dv_handle_t *h, uint32_t kind,
                   dv_error_t *err);

/* Write the handle of s. */
void dv__shm_handle(const struct dv__shm *s, dv_handle_t *out);

/* Unmap, close, and, when this process created it, unlink. Keeps errno. */
void dv__shm_release(struct dv__shm *s);

/* Futexes on words in shared memory (process-shared, not private). */
/* Sleep while *word == val, until woken or the absolute CLOCK_MONOTONIC
 * deadline (NULL: none). Returns 0, or -1 with ETIMEDOUT / EAGAIN / EINTR. */
int dv__futex_wait(uint32_t *word, uint32_t val, const struct timespec *dl);
/* Wake up to n sleepers on word. */
void dv__futex_wake(uint32_t *word, int n);

/* Spin checks before a waiter goes to sleep: a futex wake costs tens of
 * microseconds on virtual machines, a short spin a few. Every
 * DV__SPIN_YIELD checks the spinner yields its CPU, so that on a busy
 * machine the process it waits for gets to run. A spinner that finds it
 * was off its CPU for over DV__SPIN_GAP_NS (others wanted it) stops, and
 * its process sleeps at once for the next DV__SPIN_OFF_NS. */
#define DV__SPIN_CHECKS 2000
#define DV__SPIN_YIELD 16
#define DV__SPIN_GAP_NS 300000
#define DV__SPIN_OFF_NS 100000000

/* One pause of a spin loop. */
static inline void dv__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin until *word differs from old (acquire); false when it did not
 * within DV__SPIN_CHECKS checks. */
bool dv__spin_while(const uint32_t *word, uint32_t old);

/* Deadlines: timeout_s < 0 is none (returns false), else fills *dl with
 * now + timeout_s on CLOCK_MONOTONIC and returns true. */
bool dv__deadline(double timeout_s, struct timespec *dl);
/* True when the deadline has passed. */
bool dv__deadline_passed(const struct timespec *dl);
/* The earlier of dl (may be NULL: none) and now + ms milliseconds. */
struct timespec dv__deadline_min(const struct timespec *dl, long ms);

/* This process's pid, cached (refreshed in a forked child). */
pid_t dv__self_pid(void);

/* False when process pid is gone or a zombie (killed but not reaped). */
bool dv__pid_alive(pid_t pid);

/* The state letter of process pid in /proc (R, S, D, T stopped, t traced,
 * Z zombie...), 0 when it is gone, '?' when it cannot be read. */
char dv__pid_state(pid_t pid);

/* A pidfd of pid (readable once it ended; it need not be our child), or
 * -1 where the kernel has none. The caller closes it. */
int dv__pidfd_open(pid_t pid);

#endif
