/* The node table: one node, its CPUs from the affinity mask, the
 * DROVER_NODE_NAME override, GPUs, and errors before dv_init. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "drover/drover.h"

int main(int argc, char **argv)
{
    dv_node_info_t n;
    dv_error_t err;
    CHECK_EQ_INT(dv_node_count(), -1);
    CHECK_EQ_INT(errno, ENOTCONN);
    CHECK_EQ_INT(dv_node_self(), -1);
    CHECK_EQ_INT(dv_node_get(0, &n, &err), -1);
    CHECK_EQ_INT(dv_node_set_gpus(1), -1);

    /* Only CPU 0 usable: the table must say 1, whatever the machine has. */
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    CHECK_EQ_INT(sched_setaffinity(0, sizeof(one), &one), 0);
    setenv("DROVER_NODE_NAME", "emulated-node-7", 1);
    if (dv_init(&argc, &argv, &err) < 0) {
        fprintf(stderr, "dv_init: %s\n", err.text);
        return 1;
    }
    CHECK_EQ_INT(dv_node_count(), 1);
    CHECK_EQ_INT(dv_node_self(), 0);
    CHECK_EQ_INT(dv_node_get(0, &n, &err), 0);
    CHECK(strcmp(n.hostname, "emulated-node-7") == 0);
    CHECK_EQ_INT(n.index, 0);
    CHECK_EQ_INT(n.cpus, 1);
    CHECK_EQ_INT(n.gpus, 0);
    CHECK(n.uid != 0);
    CHECK_EQ_INT(dv_node_get(1, &n, &err), -1);
    CHECK_EQ_INT(errno, ERANGE);
    CHECK_EQ_INT(dv_node_get(-1, &n, &err), -1);
    CHECK_EQ_INT(dv_node_get(0, NULL, &err), -1);
    CHECK_EQ_INT(dv_node_set_gpus(-1), -1);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(dv_node_set_gpus(4), 0);
    CHECK_EQ_INT(dv_node_get(0, &n, &err), 0);
    CHECK_EQ_INT(n.gpus, 4);
    dv_finalize();
    CHECK_EQ_INT(dv_node_count(), -1);
    return CHECK_DONE();
}
