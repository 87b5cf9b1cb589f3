/* Warm spares: the pages a task touches, learned from tasks that ended
 * and touched ahead by the fork server's spare, so that a task started in
 * the spare does not stop for a page fault on each of them. A child of the
 * fork server shares every page with it: the first write to one copies it,
 * the first touch of code maps it (a fork does not copy the page tables of
 * file mappings). A Python process writes some 550 pages (reference counts,
 * the main script's objects) and maps some 50 more; where faults are dear,
 * as on a virtual machine, those are most of its start.
 *
 * The first task and every 32nd after it read, as they end, which pages
 * of their private mappings they hold (/proc/self/pagemap): of a writable
 * mapping the pages present and theirs alone, of another the pages
 * present. They leave them, as runs, in a table shared by the fork server
 * and its children. A new spare, before anything else, touches those runs
 * with madvise(MADV_POPULATE_WRITE / _READ): the copies are made while the
 * spare waits for its start. That madvise fails, rather than faults, on a
 * range that is not mapped or not writable in the spare, so a stale table
 * costs the call only. A spare holds at most WARM_PAGES_MAX pages more
 * than a cold one; mappings of more than WARM_SCAN_MAX pages (sanitizer
 * shadows, large arrays) are not read. */
#define _GNU_SOURCE
#include "lib/runtime.h"
#include "lib/shm.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

#define WARM_RUNS 1024
#define WARM_PAGES_MAX 4096 /* 16 MiB of 4 KiB pages */
#define WARM_EVERY 32
#define WARM_SCAN_MAX 65536 /* pages: 256 MiB */
#define PM_PRESENT (1ull << 63)
#define PM_EXCLUSIVE (1ull << 56)

struct warm_run {
    uintptr_t start;
    uint32_t pages;
    uint32_t write; /* else only mapped (code and read-only data) */
};

/* Shared (MAP_SHARED) by the fork server and all its children. seq is odd
 * while a task writes the runs; only one writes at a time, writer (0 until
 * it has said, and again once done), so that the next learner takes over
 * from one killed while it wrote. */
struct warm_table {
    _Atomic uint32_t seq;
    _Atomic uint32_t ended;
    _Atomic int32_t writer;
    uint32_t nruns;
    struct warm_run run[WARM_RUNS];
};

static struct warm_table *table; /* set in the fork server, inherited */
static size_t page_size;

void dv__warm_init(void)
{
    void *m = mmap(NULL, sizeof(*table), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return; /* spares stay cold */
    table = m;
    page_size = (size_t)sysconf(_SC_PAGESIZE);
}

/* Runs being built in the table: pages added in ascending order. */
struct runs {
    struct warm_run *run;
    size_t n, pages;
};

static int add_page(struct runs *r, uintptr_t addr, uint32_t write)
{
    if (r->pages == WARM_PAGES_MAX)
        return -1;
    r->pages++;
    struct warm_run *last = r->n ? &r->run[r->n - 1] : NULL;
    if (last && last->write == write &&
        last->start + last->pages * page_size == addr) {
        last->pages++;
        return 0;
    }
    if (r->n == WARM_RUNS)
        return -1;
    r->run[r->n++] = (struct warm_run){addr, 1, write};
    return 0;
}

/* Add the pages of [lo, hi) that are present and, where write, this
 * process's alone (a fork shares them; written, they were copied). */
static int scan_range(int pm, struct runs *r, uintptr_t lo, uintptr_t hi,
                      uint32_t write)
{
    uint64_t want = write ? PM_PRESENT | PM_EXCLUSIVE : PM_PRESENT;
    uint64_t e[512];
    for (uintptr_t a = lo; a < hi;) {
        size_t n = (hi - a) / page_size;
        if (n > 512)
            n = 512;
        ssize_t got = pread(pm, e, n * sizeof(e[0]),
                            (off_t)(a / page_size * sizeof(e[0])));
        if (got <= 0)
            return 0;
        n = (size_t)got / sizeof(e[0]);
        for (size_t i = 0; i < n; i++)
            if ((e[i] & want) == want &&
                add_page(r, a + i * page_size, write) < 0)
                return -1;
        a += n * page_size;
    }
    return 0;
}

/* A line of /proc/self/maps: 1 for a readable private mapping, but for
 * the kernel's own ([vdso], [vvar]...), with its range and whether it is
 * writable. */
static int private_mapping(const char *line, unsigned long *lo,
                           unsigned long *hi, uint32_t *write)
{
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", lo, hi, perms) != 3 || perms[0] != 'r' ||
        perms[3] != 'p' || strstr(line, " [v"))
        return 0;
    *write = perms[1] == 'w';
    return 1;
}

/* Scan every private mapping: the pages written of the writable ones, the
 * pages mapped of the others (a fork does not copy their page tables, so
 * each first touch of code or read-only data is a fault). */
static void scan_self(struct runs *r)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    char line[512];
    while (maps && pm >= 0 && fgets(line, sizeof(line), maps)) {
        unsigned long lo, hi;
        uint32_t write;
        int use = private_mapping(line, &lo, &hi, &write);
        if (!strchr(line, '\n')) /* a long path: skip the rest */
            while (fgets(line, sizeof(line), maps) && !strchr(line, '\n'))
                ;
        if (use && (hi - lo) / page_size <= WARM_SCAN_MAX &&
            scan_range(pm, r, lo, hi, write) < 0)
            break;
    }
    if (pm >= 0)
        close(pm);
    if (maps)
        fclose(maps);
}

/* Take the table for writing: 0 with *odd its seq meanwhile, or -1 when
 * another task is writing it. */
static int claim(uint32_t *odd)
{
    uint32_t s = atomic_load(&table->seq);
    int32_t me = (int32_t)getpid();
    if (!(s & 1)) {
        if (!atomic_compare_exchange_strong(&table->seq, &s, s + 1))
            return -1;
        atomic_store(&table->writer, me);
        *odd = s + 1;
        return 0;
    }
    int32_t w = atomic_load(&table->writer);
    if (w <= 0 || dv__pid_alive(w) ||
        !atomic_compare_exchange_strong(&table->writer, &w, me))
        return -1;
    *odd = s; /* its writer was killed while it wrote */
    return 0;
}

static void release(uint32_t odd)
{
    atomic_store(&table->writer, 0);
    atomic_store(&table->seq, odd + 1);
}

void dv__warm_claim_and_leave(void)
{
    uint32_t odd;
    if (table)
        claim(&odd);
}

void dv__warm_learn(void)
{
    uint32_t odd;
    if (!table || atomic_fetch_add(&table->ended, 1) % WARM_EVERY != 0 ||
        claim(&odd) < 0)
        return;
    /* A spare that reads the table meanwhile may touch wrong pages of its
     * own: harmless, and at most WARM_PAGES_MAX of them. */
    struct runs r = {table->run, 0, 0};
    scan_self(&r);
    table->nruns = (uint32_t)r.n;
    release(odd);
}

void dv__warm_spare(void)
{
    if (!table || (atomic_load(&table->seq) & 1))
        return;
    uint32_t n = table->nruns;
    for (uint32_t i = 0; i < n && i < WARM_RUNS; i++) {
        struct warm_run w = table->run[i];
        (void)madvise((void *)w.start, (size_t)w.pages * page_size,
                      w.write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
    }
}
