/* drover: the node table of the job, filled at start-up. */
#ifndef DROVER_NODE_H
#define DROVER_NODE_H

#include <stdint.h>

#include "drover/error.h"
#include "drover/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One node of the job; a plain value the caller owns. */
typedef struct dv_node_info {
    char hostname[64]; /* as the node reports it (or DROVER_NODE_NAME) */
    char address[64];  /* address its agent listens on ("" on one node) */
    int index;         /* 0 .. dv_node_count() - 1; 0 runs the main process */
    uint64_t uid;      /* unique for the job's lifetime */
    int cpus;          /* usable CPUs, from the affinity mask */
    int gpus;          /* counted by drover run or the node's agent */
} dv_node_info_t;

/* Number of nodes in the job; -1 (errno ENOTCONN) before dv_init(). */
DV_API int dv_node_count(void);

/* Copy node `index` into *out. Returns 0, or -1 (ERANGE, ENOTCONN). */
DV_API int dv_node_get(int index, dv_node_info_t *out, dv_error_t *err);

/* Index of the node this process runs on; -1 before dv_init(). */
DV_API int dv_node_self(void);

/* 1 when node `index` was lost while the job went on (drover run
 * --keep-going): its processes ended as killed (-SIGKILL), operations on
 * its queues and events fail with EHOSTDOWN, placement skips it. 0 when
 * not; -1 (ERANGE, ENOTCONN). This node is never lost. */
DV_API int dv_node_lost(int index);

/* Record the GPU count of this node (the telemetry samplers call it). */
DV_API int dv_node_set_gpus(int gpus);

#ifdef __cplusplus
}
#endif

#endif
