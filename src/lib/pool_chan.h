/* Internal: the channels between a pool's manager and its workers (owner:
 * pool). One shared-memory segment per pool holds a slot per worker; a
 * slot holds two single-producer rings that live beyond the worker: items
 * (manager -> worker) and results (worker -> manager). Result k answers
 * item k, so after a worker dies its slot tells exactly which items it
 * finished, which one it was running and which it never started. */
#ifndef DROVER_LIB_POOL_CHAN_H
#define DROVER_LIB_POOL_CHAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "drover/error.h"
#include "drover/handle.h"
#include "lib/pool_remote.h"

#define DV__POOL_MAGIC 0x4c4f4f5056445244ull  /* "DRDVPOOL" */
#define DV__POOL_RING 16384u                  /* entries per ring */
#define DV__POOL_DATA ((uint64_t)512 << 10)   /* payload bytes per ring */
#define DV__POOL_INLINE ((uint64_t)128 << 10) /* larger: own segment */
#define DV__POOL_TASKS 128u                   /* distinct task names per pool */
#define DV__POOL_TASKNAME 64u
#define DV__POOL_DEPTH_MAX 8192u /* items outstanding on one worker */

/* Entry flags. */
enum {
    DV__POOL_BIG = 1,      /* payload in its own segment, not in the ring */
    DV__POOL_NOTASK = 2,   /* result: the worker does not know the task */
    DV__POOL_ITEMLOST = 4, /* result: the item's segment was unreadable */
    DV__POOL_RESLOST = 8,  /* result: its bytes could not be passed (off
                              holds the errno) */
};

struct dv__pool_entry {
    uint64_t off; /* monotonic position in the ring's data area */
    uint64_t len;
    uint32_t task; /* items: index in the task-name table */
    int32_t code;  /* results: the task's return code */
    uint32_t flags;
    uint32_t pad;
};

struct dv__pool_ring {
    _Alignas(64) _Atomic uint64_t head; /* entries published (producer) */
    _Alignas(64) _Atomic uint64_t tail; /* items: started by the worker;
                                           results: taken by the manager */
    _Alignas(64) struct dv__pool_entry e[DV__POOL_RING];
    _Alignas(64) unsigned char data[DV__POOL_DATA];
};

struct dv__pool_slot {
    _Alignas(64) _Atomic uint32_t wake; /* the worker's futex word */
    _Atomic uint32_t sleeping;          /* 1 while the worker may sleep */
    _Atomic uint32_t stop;              /* 1: exit once the items ran out */
    _Atomic uint32_t wake_below;        /* wake the manager at this many
                                           items left */
    _Atomic uint64_t gen;               /* generation of the worker */
    struct dv__pool_ring items;
    struct dv__pool_ring results;
};

struct dv__pool_shared {
    uint64_t magic;
    uint32_t nslots;
    int32_t owner; /* pid of the pool's process: workers end without it */
    _Alignas(64) _Atomic uint32_t mgr_wake; /* the manager's futex word */
    _Atomic uint32_t mgr_sleeping;
    _Alignas(64) char tasks[DV__POOL_TASKS][DV__POOL_TASKNAME];
    struct dv__pool_slot slot[];
};

/* What a worker process gets as its task argument. */
struct dv__pool_hello {
    uint64_t magic;
    char shm[128]; /* segment name */
    uint32_t slot;
    int32_t node; /* the node that runs the items: another node than the
                     pool's makes this worker a proxy (pool_remote.c) */
    uint64_t gen;
    /* A proxy's: the placement's gpu for its executor, and the queues it
     * shares with it, which the manager made (pool_remote.c). */
    int32_t gpu;
    struct dv__pool_links links;
    /* dv_pool_options_t's: the task run before the first item (empty:
     * none) on the init_len bytes that follow this struct in the
     * argument, and the items to run before ending (0: no limit). */
    char init_task[DV__POOL_TASKNAME];
    uint64_t init_len;
    uint64_t max_items;
};

/* Name of the library task that runs a worker. */
#define DV__POOL_WORKER_TASK "dv__pool_worker"

/* Create the segment of a pool with nslots slots under a fresh name
 * (written to name, cap bytes). Returns the mapping or NULL. */
struct dv__pool_shared *dv__pool_chan_create(uint32_t nslots, char *name,
                                             size_t cap, dv_error_t *err);

/* Map an existing segment by name (a worker). *size receives its size. */
struct dv__pool_shared *dv__pool_chan_attach(const char *name, size_t *size,
                                             dv_error_t *err);

/* Bytes of a segment of nslots slots. */
size_t dv__pool_chan_size(uint32_t nslots);

/* Unmap (and, with name != NULL, remove) a segment. Keeps errno. */
void dv__pool_chan_release(struct dv__pool_shared *sh, size_t size,
                           const char *name);

/* Name of the segment that carries one big payload: kind 't' (item) or
 * 'r' (result) of slot/gen at ring position seq. */
int dv__pool_big_name(char *buf, size_t cap, const char *base, char kind,
                      uint32_t slot, uint64_t gen, uint64_t seq);

/* Write len bytes into a new segment `name` / read one into a malloc'd
 * buffer (and remove it). Return 0 or -1 with errno. */
int dv__pool_big_write(const char *name, const void *data, size_t len);
int dv__pool_big_read(const char *name, void **data, size_t len);

/* Reserve len contiguous bytes of a ring's data area whose producer
 * position is *pos and whose consumer has freed everything before freed.
 * Returns the monotonic offset, or UINT64_MAX when there is no room. */
uint64_t dv__pool_data_alloc(uint64_t *pos, uint64_t freed, uint64_t len);

/* Process-shared futexes: sleep while *word == val until the absolute
 * CLOCK_MONOTONIC deadline; wake every sleeper. */
void dv__pool_futex_wait(_Atomic uint32_t *word, uint32_t val,
                         const struct timespec *deadline);
void dv__pool_futex_wake(_Atomic uint32_t *word);

/* Wake whoever sleeps on word (bumping it first), only when its sleeping
 * flag says someone may sleep (the flag is cleared); force: regardless. */
void dv__pool_ring_bell(_Atomic uint32_t *word, _Atomic uint32_t *sleeping,
                        bool force);

/* Now on CLOCK_MONOTONIC in seconds. (Absolute deadlines and the pause of
 * a spin loop: dv__deadline_min and dv__cpu_relax of lib/shm.h.) */
double dv__pool_now(void);

/* Spin checks before sleeping. */
#define DV__POOL_SPIN 2000

#endif
