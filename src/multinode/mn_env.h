/* The environment of processes started for other nodes (mn_env.c). */
#ifndef DROVER_MN_ENV_H
#define DROVER_MN_ENV_H

#include <stddef.h>

#include "multinode/mn.h"

/* Whether entry ("NAME=value") describes the node it is set on (DROVER_*,
 * SLURM_*, SLURMD_*, the GPU lists) and so stays the agent's. */
int mn_env_is_node_local(const char *entry);

/* Add this process's working directory (MN_CWD) and environment (MN_ENV:
 * the entries, each ending in '\0') to b. Returns 0, or -1 out of memory
 * (nothing added). */
int mn_env_put(dv_wire_buf_t *b);

/* The environment of a task started here: origin's entries (len bytes as
 * mn_env_put made them; NULL: none, ours instead) but the node-local ones,
 * which come from ours. With gpu >= 0 the GPU lists are left out (the
 * caller sets them). Room is left for `extra` more entries after the *used
 * ones and the NULL. Free with mn_env_free(). NULL when out of memory. */
char **mn_env_task(const char *origin, size_t len, int gpu, int extra,
                   size_t *used);

/* Free what mn_env_task() returned (NULL is fine). */
void mn_env_free(char **e);

#endif
