/* The node table of the job and placement over it. On one node the table
 * is built here from the environment and the affinity mask; a multi-node
 * launcher replaces it with dv__node_table_set(). */
#define _GNU_SOURCE
#include "lib/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "lib/internal.h"

static dv_node_info_t *nodes;
static int *data_ports; /* multi-node: each node's data port (0: none) */
static int count;
static int self = -1;
/* Processes placed round-robin or block by this process (any thread). */
static _Atomic unsigned long placed;
/* The node service's marks of lost nodes (DV_LOST_FILE), mapped at the
 * first question; count bytes. */
static const char *_Atomic lost_map;
static size_t lost_len;
static pthread_mutex_t lost_mu = PTHREAD_MUTEX_INITIALIZER;

static int usable_cpus(void)
{
    for (int n = 1024; n <= 1 << 16; n *= 2) {
        cpu_set_t *set = CPU_ALLOC(n);
        size_t sz = CPU_ALLOC_SIZE(n);
        if (!set)
            break;
        if (sched_getaffinity(0, sz, set) == 0) {
            int c = CPU_COUNT_S(sz, set);
            CPU_FREE(set);
            return c > 0 ? c : 1;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            break;
    }
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static int env_int(const char *name, int def, int lo, int hi)
{
    const char *v = getenv(name);
    char *end;
    long x = v ? strtol(v, &end, 10) : def;
    if (!v || end == v || *end || x < lo || x > hi)
        return def;
    return (int)x;
}

/* One line of a node table file: "INDEX UID CPUS GPUS HOST ADDRESS
 * [PORT]" (uid in hex, address "-" when none, PORT the agent's data port
 * for queue and event operations of other nodes). */
static int table_line(const char *line, dv_node_info_t *t, int *ports, int n)
{
    int idx, cpus, gpus, port = 0;
    unsigned long long uid;
    char host[64], addr[64];
    int k = sscanf(line, "%d %llx %d %d %63s %63s %d", &idx, &uid, &cpus, &gpus,
                   host, addr, &port);
    if (k < 6 || idx < 0 || idx >= n || cpus < 0 || gpus < 0 || port < 0 ||
        port > 65535)
        return -1;
    ports[idx] = port;
    dv_node_info_t *m = &t[idx];
    snprintf(m->hostname, sizeof(m->hostname), "%s", host);
    snprintf(m->address, sizeof(m->address), "%s",
             strcmp(addr, "-") ? addr : "");
    m->index = idx;
    m->uid = uid;
    m->cpus = cpus;
    m->gpus = gpus;
    return 0;
}

/* The table a multi-node agent wrote (DROVER_NODE_TABLE): n lines. */
static int load_table(const char *path, int n, int me, dv_error_t *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return dv__errsys(err, "dv_init: node table %s", path);
    dv_node_info_t *t = calloc((size_t)n, sizeof(*t));
    int *ports = calloc((size_t)n, sizeof(int));
    char line[256];
    int got = 0;
    while (t && ports && got < n && fgets(line, sizeof(line), f))
        if (table_line(line, t, ports, n) == 0)
            got++;
    fclose(f);
    if (!t || !ports || got != n) {
        free(t);
        free(ports);
        return dv__errprintf(err, EPROTO,
                             "dv_init: node table %s: %d of %d "
                             "nodes",
                             path, got, n);
    }
    free(nodes);
    free(data_ports);
    nodes = t;
    data_ports = ports;
    count = n;
    self = me;
    return 0;
}

int dv__node_data_port(int node)
{
    return data_ports && node >= 0 && node < count ? data_ports[node] : 0;
}

int dv__node_init(dv_error_t *err)
{
    int n = env_int(DV_ENV_NODE_COUNT, 1, 1, 1 << 16);
    const char *tab = getenv(DV_ENV_NODE_TABLE);
    if (tab && *tab)
        return load_table(tab, n, env_int(DV_ENV_NODE_INDEX, 0, 0, n - 1), err);
    int me = env_int(DV_ENV_NODE_INDEX, 0, 0, n - 1);
    dv_node_info_t *t = calloc((size_t)n, sizeof(*t));
    if (!t)
        return dv__errprintf(err, ENOMEM, "dv_init: out of memory");
    dv_node_info_t *m = &t[me];
    const char *name = getenv(DV_ENV_NODE_NAME);
    if (name && *name)
        snprintf(m->hostname, sizeof(m->hostname), "%s", name);
    else if (gethostname(m->hostname, sizeof(m->hostname)) < 0)
        snprintf(m->hostname, sizeof(m->hostname), "localhost");
    m->hostname[sizeof(m->hostname) - 1] = 0;
    for (int i = 0; i < n; i++)
        t[i].index = i;
    const char *uid = getenv(DV_ENV_NODE_UID);
    char *end;
    m->uid = uid ? strtoull(uid, &end, 16) : 0;
    if (!m->uid) {
        char idx[16];
        snprintf(idx, sizeof(idx), "/%d", me);
        m->uid = fnv1a(
            fnv1a(fnv1a(0xcbf29ce484222325ull, dv__job_id()), m->hostname),
            idx);
    }
    m->cpus = usable_cpus();
    m->gpus = env_int(DV_ENV_NODE_GPUS, 0, 0, 1 << 16);
    free(nodes);
    free(data_ports);
    data_ports = NULL;
    nodes = t;
    count = n;
    self = me;
    return 0;
}

int dv__node_table_set(const dv_node_info_t *t, int n, int me)
{
    if (!t || n < 1 || me < 0 || me >= n) {
        errno = EINVAL;
        return -1;
    }
    dv_node_info_t *c = malloc((size_t)n * sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(c, t, (size_t)n * sizeof(*c));
    free(nodes);
    nodes = c;
    count = n;
    self = me;
    return 0;
}

void dv__node_reset(void)
{
    const char *m = atomic_exchange(&lost_map, NULL);
    if (m)
        munmap((void *)m, lost_len);
    free(data_ports);
    data_ports = NULL;
    free(nodes);
    nodes = NULL;
    count = 0;
    self = -1;
}

int dv_node_count(void)
{
    if (self < 0) {
        errno = ENOTCONN;
        return -1;
    }
    return count;
}

int dv_node_get(int index, dv_node_info_t *out, dv_error_t *err)
{
    if (self < 0)
        return dv__errprintf(err, ENOTCONN, "dv_node_get: call dv_init first");
    if (index < 0 || index >= count)
        return dv__errprintf(err, ERANGE, "dv_node_get: no node %d (of %d)",
                             index, count);
    if (!out)
        return dv__errprintf(err, EINVAL, "dv_node_get: NULL output");
    *out = nodes[index];
    return 0;
}

int dv_node_self(void)
{
    if (self < 0)
        errno = ENOTCONN;
    return self;
}

/* Map rundir/lost once; NULL while there is none (one node, no agent). */
static const char *lost_marks(void)
{
    const char *m = atomic_load(&lost_map);
    if (m || count <= 1)
        return m;
    pthread_mutex_lock(&lost_mu);
    const char *dir = getenv(DV_ENV_RUNDIR);
    char path[4096];
    struct stat st;
    int fd = -1;
    if (!(m = atomic_load(&lost_map)) && dir &&
        snprintf(path, sizeof(path), "%s/%s", dir, DV_LOST_FILE) <
            (int)sizeof(path) &&
        (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0 && fstat(fd, &st) == 0 &&
        st.st_size >= count) {
        void *p = mmap(NULL, (size_t)count, PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            lost_len = (size_t)count;
            atomic_store(&lost_map, m = p);
        }
    }
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&lost_mu);
    return m;
}

int dv_node_lost(int index)
{
    int e = errno;
    if (self < 0 || index < 0 || index >= count) {
        errno = self < 0 ? ENOTCONN : ERANGE;
        return -1;
    }
    const char *m = index == self ? NULL : lost_marks();
    errno = e;
    return m && ((const volatile char *)m)[index] == 1;
}

const char *dv__node_name(int i, char *buf, size_t cap)
{
    if (i >= 0 && i < count && nodes)
        snprintf(buf, cap, "node %d (%s)", i, nodes[i].hostname);
    else
        snprintf(buf, cap, "node %d", i);
    return buf;
}

int dv_node_set_gpus(int gpus)
{
    if (self < 0) {
        errno = ENOTCONN;
        return -1;
    }
    if (gpus < 0) {
        errno = EINVAL;
        return -1;
    }
    nodes[self].gpus = gpus;
    return 0;
}

/* The weight of node i for block placement: its CPUs, 0 once lost. */
static unsigned long block_weight(int i)
{
    if (dv_node_lost(i) == 1)
        return 0;
    return nodes[i].cpus > 0 ? (unsigned long)nodes[i].cpus : 1;
}

static int block_node(unsigned long ticket)
{
    unsigned long total = 0;
    for (int i = 0; i < count; i++)
        total += block_weight(i);
    if (!total)
        return self;
    unsigned long k = ticket % total;
    for (int i = 0; i < count; i++) {
        unsigned long c = block_weight(i);
        if (k < c)
            return i;
        k -= c;
    }
    return self;
}

/* Round-robin over the nodes not lost (this one never is). */
static int next_node(void)
{
    int node = self;
    for (int k = 0; k < count; k++) {
        node = (int)(atomic_fetch_add(&placed, 1) % (unsigned long)count);
        if (dv_node_lost(node) != 1)
            break;
    }
    return node;
}

int dv__placement_node(const dv_placement_t *where, dv_error_t *err)
{
    if (self < 0)
        return dv__errprintf(err, ENOTCONN, "placement: call dv_init first");
    dv_policy_t pol = where ? where->policy : DV_POLICY_DEFAULT;
    int node;
    if (pol == DV_POLICY_DEFAULT) {
        const char *p = getenv(DV_ENV_POLICY);
        if (p && !strcmp(p, "block"))
            pol = DV_POLICY_BLOCK;
        else if (p && !strcmp(p, "local"))
            pol = DV_POLICY_LOCAL;
    }
    switch (pol) {
    case DV_POLICY_DEFAULT:
    case DV_POLICY_ROUND_ROBIN:
        node = next_node();
        break;
    case DV_POLICY_BLOCK:
        node = block_node(atomic_fetch_add(&placed, 1));
        break;
    case DV_POLICY_NODE:
        if (where->node < 0 || where->node >= count)
            return dv__errprintf(err, EINVAL, "placement: no node %d (of %d)",
                                 where->node, count);
        node = where->node;
        break;
    case DV_POLICY_HOST:
        for (node = 0; node < count; node++)
            if (where->host && !strcmp(nodes[node].hostname, where->host))
                break;
        if (node == count)
            return dv__errprintf(err, ENOENT, "placement: no node named '%s'",
                                 where->host ? where->host : "(null)");
        break;
    case DV_POLICY_LOCAL:
        node = self;
        break;
    default:
        return dv__errprintf(err, EINVAL, "placement: unknown policy %d",
                             (int)pol);
    }
    char name[96];
    if (dv_node_lost(node) == 1)
        return dv__errprintf(err, EHOSTDOWN, "placement: %s is lost",
                             dv__node_name(node, name, sizeof(name)));
    return node;
}
