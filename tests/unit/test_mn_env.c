/* The environment of processes started for other nodes
 * (src/multinode/mn_env.c): the main process's directory and environment
 * travel in a message, and a task gets them but for the node's own names. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "multinode/mn_env.h"

static int has(char **e, const char *entry)
{
    for (size_t i = 0; e && e[i]; i++)
        if (!strcmp(e[i], entry))
            return 1;
    return 0;
}

static size_t count(char **e)
{
    size_t n = 0;
    while (e && e[n])
        n++;
    return n;
}

static void test_node_local(void)
{
    CHECK(mn_env_is_node_local("DROVER_NODE_INDEX=1"));
    CHECK(mn_env_is_node_local("SLURM_NODEID=3"));
    CHECK(mn_env_is_node_local("CUDA_VISIBLE_DEVICES=0,1"));
    CHECK(mn_env_is_node_local("ROCR_VISIBLE_DEVICES="));
    CHECK(!mn_env_is_node_local("PATH=/bin"));
    CHECK(!mn_env_is_node_local("CUDA_HOME=/opt/cuda"));
    CHECK(!mn_env_is_node_local("DROVERX=1"));
}

/* What mn_env_put sends decodes to our directory and environment. */
static void test_put(void)
{
    setenv("MN_ENV_TEST", "sent", 1);
    dv_wire_buf_t b = {0};
    CHECK(mn_msg_begin(&b, DV_WIRE_WELCOME, 0, 1) == 0);
    CHECK(mn_env_put(&b) == 0);
    CHECK(dv__wire_end(&b, NULL) == 0);
    dv_wire_view_t v;
    CHECK(dv__wire_decode(b.data, b.len, &v, NULL) == 0);
    char cwd[PATH_MAX], got[PATH_MAX];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK(dv__wire_get_str(&v, MN_CWD, got, sizeof(got), NULL) == 0);
    CHECK(!strcmp(cwd, got));
    const dv_wire_field_t *f = dv__wire_find(&v, MN_ENV);
    CHECK(f != NULL);
    if (f) {
        CHECK(f->len > 0 && f->data[f->len - 1] == '\0');
        CHECK(memmem(f->data, f->len, "\0MN_ENV_TEST=sent\0", 18) != NULL ||
              !memcmp(f->data, "MN_ENV_TEST=sent\0", 17));
    }
    dv__wire_buf_release(&b);
    unsetenv("MN_ENV_TEST");
}

/* The origin's entries but the node-local ones, which are ours. */
static void test_task(void)
{
    setenv("DROVER_NODE_INDEX", "1", 1);
    setenv("CUDA_VISIBLE_DEVICES", "3", 1);
    setenv("MN_ENV_AGENT_ONLY", "x", 1);
    static const char origin[] = "PATH=/origin/bin\0DROVER_NODE_INDEX=0\0"
                                 "CUDA_VISIBLE_DEVICES=0\0MN_ENV_MAIN=1\0"
                                 "not an entry\0";
    size_t used = 0;
    char **e = mn_env_task(origin, sizeof(origin) - 1, -1, 2, &used);
    CHECK(e != NULL);
    CHECK_EQ_INT(used, count(e));
    CHECK(has(e, "PATH=/origin/bin"));
    CHECK(has(e, "MN_ENV_MAIN=1"));
    CHECK(has(e, "DROVER_NODE_INDEX=1"));
    CHECK(has(e, "CUDA_VISIBLE_DEVICES=3"));
    CHECK(!has(e, "DROVER_NODE_INDEX=0"));
    CHECK(!has(e, "CUDA_VISIBLE_DEVICES=0"));
    CHECK(!has(e, "MN_ENV_AGENT_ONLY=x"));
    CHECK(!has(e, "not an entry"));
    e[used] = strdup("EXTRA=1"); /* the room asked for */
    e[used + 1] = strdup("EXTRA=2");
    CHECK(e[used + 2] == NULL);
    mn_env_free(e);

    /* A GPU of its own: the GPU lists are the caller's to set. */
    e = mn_env_task(origin, sizeof(origin) - 1, 1, 0, &used);
    CHECK(e && !has(e, "CUDA_VISIBLE_DEVICES=3"));
    mn_env_free(e);

    /* A truncated block: what precedes the cut is kept. */
    e = mn_env_task(origin, 20, -1, 0, &used);
    CHECK(e && has(e, "PATH=/origin/bin") && !has(e, "MN_ENV_MAIN=1"));
    mn_env_free(e);

    /* No origin: ours, whole. */
    e = mn_env_task(NULL, 0, -1, 0, &used);
    CHECK(e && has(e, "MN_ENV_AGENT_ONLY=x") && has(e, "DROVER_NODE_INDEX=1"));
    mn_env_free(e);
    mn_env_free(NULL);
}

int main(void)
{
    test_node_local();
    test_put();
    test_task();
    return CHECK_DONE();
}
