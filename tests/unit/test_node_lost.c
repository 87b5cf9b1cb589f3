/* Lost nodes (drover run --keep-going) as a process sees them: the marks
 * its node's service writes into rundir/lost, read by dv_node_lost, and
 * placement that skips lost nodes or refuses them. A table of 3 nodes is
 * loaded as an agent's processes load theirs (white-box: dv__node_init). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "drover/drover.h"
#include "lib/runtime.h"

static char dir[] = "/tmp/dv_node_lost_XXXXXX";

static void put_file(const char *name, const char *text, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, text, len) == (ssize_t)len);
    close(fd);
}

static void mark_lost(int node)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, DV_LOST_FILE);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, "\1", 1, node) == 1);
    close(fd);
}

/* Nodes of k round-robin placements, as a bit set. */
static unsigned placed(const dv_placement_t *w, int k)
{
    unsigned seen = 0;
    for (int i = 0; i < k; i++) {
        int n = dv__placement_node(w, NULL);
        CHECK(n >= 0 && n < 3);
        seen |= 1u << n;
    }
    return seen;
}

int main(void)
{
    dv_error_t err;
    CHECK(mkdtemp(dir) != NULL);
    const char *table = "0 1 2 0 a 10.0.0.1 1000\n"
                        "1 2 2 0 b 10.0.0.2 1000\n"
                        "2 3 2 0 c 10.0.0.3 1000\n";
    put_file("nodes", table, strlen(table));
    put_file(DV_LOST_FILE, "\0\0\0", 3);
    char path[256];
    snprintf(path, sizeof(path), "%s/nodes", dir);
    setenv(DV_ENV_NODE_TABLE, path, 1);
    setenv(DV_ENV_NODE_COUNT, "3", 1);
    setenv(DV_ENV_NODE_INDEX, "0", 1);
    setenv(DV_ENV_RUNDIR, dir, 1);
    CHECK_EQ_INT(dv__node_init(&err), 0);

    CHECK_EQ_INT(dv_node_lost(1), 0);
    CHECK_EQ_INT(dv_node_lost(3), -1);
    CHECK_EQ_INT(errno, ERANGE);
    dv_placement_t rr = DV_PLACEMENT_DEFAULT;
    rr.policy = DV_POLICY_ROUND_ROBIN;
    dv_placement_t block = DV_PLACEMENT_DEFAULT;
    block.policy = DV_POLICY_BLOCK;
    dv_placement_t one = DV_PLACEMENT_DEFAULT;
    one.policy = DV_POLICY_NODE;
    one.node = 1;
    CHECK_EQ_INT(placed(&rr, 6), 7);
    CHECK_EQ_INT(placed(&block, 12), 7);
    CHECK_EQ_INT(dv__placement_node(&one, &err), 1);

    /* Node 1 is lost: seen at once (the file is mapped), skipped by
     * round-robin and block, refused by name. */
    mark_lost(1);
    CHECK_EQ_INT(dv_node_lost(1), 1);
    CHECK_EQ_INT(dv_node_lost(2), 0);
    CHECK_EQ_INT(placed(&rr, 6), 5);
    CHECK_EQ_INT(placed(&block, 12), 5);
    CHECK_EQ_INT(dv__placement_node(&one, &err), -1);
    CHECK_EQ_INT(errno, EHOSTDOWN);
    CHECK(strcmp(err.text, "placement: node 1 (b) is lost") == 0);
    dv_placement_t host = DV_PLACEMENT_DEFAULT;
    host.policy = DV_POLICY_HOST;
    host.host = "b";
    CHECK_EQ_INT(dv__placement_node(&host, &err), -1);
    CHECK_EQ_INT(errno, EHOSTDOWN);

    /* This node is never lost, whatever the file says; with every other
     * node lost everything lands here. */
    mark_lost(0);
    mark_lost(2);
    CHECK_EQ_INT(dv_node_lost(0), 0);
    CHECK_EQ_INT(placed(&rr, 4), 1);
    CHECK_EQ_INT(placed(&block, 4), 1);
    dv__node_reset();
    CHECK_EQ_INT(dv_node_lost(0), -1);
    CHECK_EQ_INT(errno, ENOTCONN);

    /* No marks file (one node, or none written): nothing is lost. */
    snprintf(path, sizeof(path), "%s/%s", dir, DV_LOST_FILE);
    unlink(path);
    CHECK_EQ_INT(dv__node_init(&err), 0);
    CHECK_EQ_INT(dv_node_lost(1), 0);
    dv__node_reset();
    snprintf(path, sizeof(path), "%s/nodes", dir);
    unlink(path);
    rmdir(dir);
    return CHECK_DONE();
}
