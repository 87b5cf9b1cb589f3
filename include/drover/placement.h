/* drover: where a process, a pool's workers or an object goes. */
#ifndef DROVER_PLACEMENT_H
#define DROVER_PLACEMENT_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dv_policy {
    DV_POLICY_DEFAULT = 0, /* the job's policy (drover run --policy) */
    DV_POLICY_ROUND_ROBIN, /* successive creations cycle over the nodes */
    DV_POLICY_BLOCK,       /* fill a node's usable CPUs, then the next */
    DV_POLICY_NODE,        /* the node with index `node` */
    DV_POLICY_HOST,        /* the node named `host` */
    DV_POLICY_LOCAL,       /* the caller's own node */
} dv_policy_t;

/* A plain value; `host` is borrowed for the duration of the call it is
 * passed to. A NULL placement means DV_POLICY_DEFAULT with no GPU. */
typedef struct dv_placement {
    dv_policy_t policy;
    int node;         /* with DV_POLICY_NODE */
    const char *host; /* with DV_POLICY_HOST */
    int gpu;          /* >= 0: sets CUDA_VISIBLE_DEVICES and
                         ROCR_VISIBLE_DEVICES to it (below the node's
                         GPU count, where it has one); -1: untouched */
} dv_placement_t;

/* A placement with the default policy and no GPU. */
#define DV_PLACEMENT_DEFAULT ((dv_placement_t){DV_POLICY_DEFAULT, 0, 0, -1})

#ifdef __cplusplus
}
#endif

#endif
