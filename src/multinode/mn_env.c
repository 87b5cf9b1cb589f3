/* The environment and working directory of processes started on another
 * node, as srun gives its tasks the caller's: the head sends its own (the
 * main process's) in the welcome, and an agent execs a task in that
 * directory with that environment, except for the names that describe the
 * node (the runtime's DROVER_*, Slurm's SLURM_*, the GPU lists), which stay
 * the agent's. */
#define _GNU_SOURCE
#include "multinode/mn_env.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static const char *const node_prefixes[] = {
    "DROVER_",
    "SLURM_",
    "SLURMD_",
    "CUDA_VISIBLE_DEVICES=",
    "ROCR_VISIBLE_DEVICES=",
    "HIP_VISIBLE_DEVICES=",
    "GPU_DEVICE_ORDINAL=",
};

int mn_env_is_node_local(const char *entry)
{
    for (size_t i = 0; i < sizeof(node_prefixes) / sizeof(*node_prefixes); i++)
        if (!strncmp(entry, node_prefixes[i], strlen(node_prefixes[i])))
            return 1;
    return 0;
}

int mn_env_put(dv_wire_buf_t *b)
{
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)))
        dv__wire_put_str(b, MN_CWD, cwd);
    size_t len = 0;
    for (size_t i = 0; environ[i]; i++)
        len += strlen(environ[i]) + 1;
    char *block = malloc(len ? len : 1);
    if (!block)
        return -1;
    char *p = block;
    for (size_t i = 0; environ[i]; i++) {
        size_t n = strlen(environ[i]) + 1;
        memcpy(p, environ[i], n);
        p += n;
    }
    dv__wire_put(b, MN_ENV, block, len);
    free(block);
    return 0;
}

static size_t count_entries(const char *block, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += block[i] == '\0';
    return n;
}

/* Append a copy of entry unless it names the GPU lists that gpu >= 0
 * replaces. Returns -1 when out of memory. */
static int add(char **e, size_t *k, const char *entry, int gpu)
{
    if (gpu >= 0 && (!strncmp(entry, "CUDA_VISIBLE_DEVICES=", 21) ||
                     !strncmp(entry, "ROCR_VISIBLE_DEVICES=", 21)))
        return 0;
    if (!(e[*k] = strdup(entry)))
        return -1;
    (*k)++;
    return 0;
}

char **mn_env_task(const char *origin, size_t len, int gpu, int extra,
                   size_t *used)
{
    size_t n = 0;
    while (environ[n])
        n++;
    size_t total = n + (origin ? count_entries(origin, len) : 0);
    char **e = calloc(total + (size_t)extra + 1, sizeof(char *));
    if (!e)
        return NULL;
    size_t k = 0;
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++)
        if (!origin || mn_env_is_node_local(environ[i]))
            bad = add(e, &k, environ[i], gpu);
    for (size_t i = 0; origin && i < len && !bad;) {
        const char *entry = origin + i;
        size_t m = strnlen(entry, len - i);
        if (m == len - i)
            break; /* no terminator: not an entry */
        if (strchr(entry, '=') && !mn_env_is_node_local(entry))
            bad = add(e, &k, entry, gpu);
        i += m + 1;
    }
    if (bad) {
        mn_env_free(e);
        return NULL;
    }
    *used = k;
    return e;
}

void mn_env_free(char **e)
{
    for (size_t i = 0; e && e[i]; i++)
        free(e[i]);
    free(e);
}
