/* Internal interfaces shared by the modules of libdrover (never installed).
 * Each module adds what others need from it here, with its owner noted. */
#ifndef DROVER_LIB_INTERNAL_H
#define DROVER_LIB_INTERNAL_H

#include <stddef.h>

#include "drover/drover.h"

/* The bytes a task leaves for its caller (task.h). Owned by whoever
 * created it; data is malloc'd. */
struct dv_result {
    void *data;
    size_t len;
};

/* The job's identifier: DROVER_JOB_ID from the environment, else one made
 * from this process's pid and start time (a private runtime, or a test that
 * uses the library without a runtime). Stable for the process's lifetime;
 * [A-Za-z0-9_-] only. */
const char *dv__job_id(void);

/* The job's name for this node's objects: the job id on node 0 (and on
 * one node), "<job id>-n<K>" on node K of a multi-node job, so that
 * emulated nodes sharing /dev/shm and /tmp keep their objects apart. */
const char *dv__job_node_id(void);

/* Every shared-memory object of the job is named "/drover.<job node id>.<rest>"
 * so teardown can remove them all. Writes the name into buf (size cap) and
 * returns 0, or -1 with ENAMETOOLONG. */
int dv__shm_name(char *buf, size_t cap, const char *rest);

#endif
