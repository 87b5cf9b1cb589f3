/* The Slurm launcher's pieces: SLURM_JOB_CPUS_PER_NODE in every form
 * Slurm writes (and the ones it does not, named in the error), the node
 * order drover gives them, srun --version texts, and the srun command
 * line with and without --overlap. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "multinode/launch.h"

static void expect_cpus(const char *value, int n, const int *want)
{
    int got[16];
    dv_error_t err = {{0}};
    if (dv__slurm_cpus_parse(value, n, got, &err) < 0) {
        fprintf(stderr, "'%s': %s\n", value, err.text);
        check_failures++;
        return;
    }
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(got[i], want[i]);
}

static void test_cpus_forms(void)
{
    expect_cpus("24", 1, (const int[]){24});
    expect_cpus("24(x2)", 2, (const int[]){24, 24});
    expect_cpus("24(x2),12", 3, (const int[]){24, 24, 12});
    expect_cpus("8,4(x3)", 4, (const int[]){8, 4, 4, 4});
    expect_cpus("1,2,3", 3, (const int[]){1, 2, 3});
    expect_cpus("72(x2),36,4(x2)", 5, (const int[]){72, 72, 36, 4, 4});
}

static void expect_bad(const char *value, int n, const char *why)
{
    int got[16];
    dv_error_t err = {{0}};
    CHECK(dv__slurm_cpus_parse(value, n, got, &err) == -1 && errno == EINVAL);
    CHECK(!strncmp(err.text, "SLURM_JOB_CPUS_PER_NODE '", 25));
    CHECK(strchr(err.text, '\n') == NULL);
    if (!strstr(err.text, why)) {
        fprintf(stderr, "'%s': expected '%s', got '%s'\n", value, why,
                err.text);
        check_failures++;
    }
}

static void test_cpus_bad(void)
{
    expect_bad("", 1, "'': empty");
    expect_bad(NULL, 1, "empty");
    expect_bad("24(x2)", 3, "'24(x2)': 2 nodes, the allocation has 3");
    expect_bad("24(x2),12", 2, "more nodes than the allocation's 2");
    expect_bad("24(x4000000000)", 2, "a repeat is not (xK)");
    expect_bad("24(x0)", 2, "a repeat is not (xK)");
    expect_bad("24(2)", 2, "a repeat is not (xK)");
    expect_bad("24(x2", 2, "a repeat is not (xK)");
    expect_bad("24x2", 2, "nodes are not separated by ','");
    expect_bad("24;12", 2, "nodes are not separated by ','");
    expect_bad("24,", 2, "a CPU count is not a number");
    expect_bad(",24", 2, "a CPU count is not a number");
    expect_bad("0", 1, "a CPU count is not a number in 1..1048576");
    expect_bad(" 24", 1, "'?24': a CPU count");
    expect_bad("24\n", 1, "'24?': nodes are not separated");
    expect_bad("99999999999", 1, "a CPU count is not a number");
}

/* Node 0 is the head's allocation node; the agents are the rest, in
 * order, as srun --exclude gives them. */
static void test_node_order(void)
{
    const int alloc[] = {8, 4, 2, 1};
    int out[4];
    CHECK(dv__slurm_node_cpus(alloc, 4, 0, out, 4) == 0);
    CHECK(out[0] == 8 && out[1] == 4 && out[2] == 2 && out[3] == 1);
    CHECK(dv__slurm_node_cpus(alloc, 4, 2, out, 4) == 0);
    CHECK(out[0] == 2 && out[1] == 8 && out[2] == 4 && out[3] == 1);
    CHECK(dv__slurm_node_cpus(alloc, 4, 3, out, 2) == 0); /* --nodes 2 */
    CHECK(out[0] == 1 && out[1] == 8);
    CHECK(dv__slurm_node_cpus(alloc, 4, 4, out, 4) == -1 && errno == EINVAL);
    CHECK(dv__slurm_node_cpus(alloc, 4, 0, out, 5) == -1);
}

static void test_overlap_versions(void)
{
    CHECK(dv__slurm_has_overlap("slurm 20.11.9\n"));
    CHECK(dv__slurm_has_overlap("slurm 23.02.7\n"));
    CHECK(dv__slurm_has_overlap("slurm-wlm 21.08.5\n"));
    CHECK(dv__slurm_has_overlap("slurm 24.05.0-0rc1\n"));
    CHECK(!dv__slurm_has_overlap("slurm 20.02.7\n"));
    CHECK(!dv__slurm_has_overlap("slurm 19.05.8\n"));
    CHECK(!dv__slurm_has_overlap("slurm-wlm 17.11.2\n"));
    CHECK(!dv__slurm_has_overlap("srun: not a version\n"));
    CHECK(!dv__slurm_has_overlap(""));
    CHECK(!dv__slurm_has_overlap(NULL));
}

/* A stand-in srun on PATH that prints version (or is missing). */
static void fake_srun(const char *dir, const char *version)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/srun", dir);
    unlink(path);
    if (!version)
        return;
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fprintf(f, "#!/bin/sh\n[ \"$1\" = --version ] && echo '%s'\n", version);
    fclose(f);
    CHECK(chmod(path, 0755) == 0);
}

static void test_srun_version(void)
{
    char dir[] = "/tmp/drover-test-srun.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *old = getenv("PATH");
    char *saved = strdup(old ? old : "/usr/bin:/bin"), path[512];
    snprintf(path, sizeof(path), "%s:%s", dir, saved);
    setenv("PATH", path, 1);
    fake_srun(dir, "slurm 23.02.7");
    CHECK(dv__srun_has_overlap() == 1);
    fake_srun(dir, "slurm 20.02.7");
    CHECK(dv__srun_has_overlap() == 0);
    setenv("PATH", dir, 1); /* no srun at all */
    fake_srun(dir, NULL);
    errno = 0;
    CHECK(dv__srun_has_overlap() == 0 && errno == 0);
    setenv("PATH", saved, 1);
    free(saved);
    CHECK(rmdir(dir) == 0);
}

static int argv_is(char **argv, const char *const *want)
{
    int i = 0;
    for (; argv[i] && want[i]; i++)
        if (strcmp(argv[i], want[i]))
            return 0;
    return !argv[i] && !want[i];
}

static void test_srun_argv(void)
{
    char *cmd[] = {"/opt/drover/bin/drover", "agent", "--head", "tcp://x:1",
                   NULL};
    char nodes[64], *argv[24];
    const char *old[] = {"srun",
                         "--nodes=3",
                         "--ntasks=3",
                         "--ntasks-per-node=1",
                         "--cpu-bind=none",
                         "--kill-on-bad-exit=0",
                         "--input=all",
                         "--exclude",
                         "login1",
                         "/opt/drover/bin/drover",
                         "agent",
                         "--head",
                         "tcp://x:1",
                         NULL};
    CHECK_EQ_INT(dv__srun_argv(3, "login1", 0, cmd, nodes, argv, 24), 13);
    CHECK(argv_is(argv, old));
    const char *ov[] = {"srun",
                        "--nodes=3",
                        "--ntasks=3",
                        "--ntasks-per-node=1",
                        "--cpu-bind=none",
                        "--kill-on-bad-exit=0",
                        "--input=all",
                        "--overlap",
                        "/opt/drover/bin/drover",
                        "agent",
                        "--head",
                        "tcp://x:1",
                        NULL};
    CHECK_EQ_INT(dv__srun_argv(3, "", 1, cmd, nodes, argv, 24), 12);
    CHECK(argv_is(argv, ov));
    CHECK(dv__srun_argv(3, "login1", 1, cmd, nodes, argv, 13) == -1);
    CHECK(errno == E2BIG);
}

/* SLURM_JOB_NODELIST: the names in order, "a,b" joined for comparison. */
static void expect_list(const char *value, const char *want)
{
    dv_hostlist_t l;
    dv_error_t err = {{0}};
    char got[512] = "";
    if (dv__slurm_nodelist_expand(value, &l, &err) < 0) {
        fprintf(stderr, "'%s': %s\n", value, err.text);
        check_failures++;
        return;
    }
    for (int i = 0; i < l.n; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s",
                 i ? "," : "", l.hosts[i]);
    if (strcmp(got, want)) {
        fprintf(stderr, "'%s': expected '%s', got '%s'\n", value, want, got);
        check_failures++;
    }
    dv__hostlist_free(&l);
}

static void expect_list_bad(const char *value, const char *why)
{
    dv_hostlist_t l = {NULL, 3, NULL};
    dv_error_t err = {{0}};
    CHECK(dv__slurm_nodelist_expand(value, &l, &err) == -1 && errno == EINVAL);
    CHECK(l.n == 0 && l.hosts == NULL);
    CHECK(!strncmp(err.text, "SLURM_JOB_NODELIST '", 20));
    if (!strstr(err.text, why)) {
        fprintf(stderr, "'%s': expected '%s', got '%s'\n", value, why,
                err.text);
        check_failures++;
    }
}

static void test_nodelist(void)
{
    expect_list("node1", "node1");
    expect_list("node[2-4]", "node2,node3,node4");
    expect_list("n[1,3-4],login", "n1,n3,n4,login");
    expect_list("gpu[08-11]", "gpu08,gpu09,gpu10,gpu11");
    expect_list("c[9-10]-ib", "c9-ib,c10-ib");
    expect_list("r[1-2]n[1-2]", "r1n1,r1n2,r2n1,r2n2");
    expect_list("a.b.c,d[1]", "a.b.c,d1");
    expect_list_bad("", "empty");
    expect_list_bad(NULL, "empty");
    expect_list_bad("node[1-", "without its ']'");
    expect_list_bad("node[3-1]", "a range is not");
    expect_list_bad("node[a]", "a range is not");
    expect_list_bad("n1,,n2", "an empty name");
    expect_list_bad("n1,", "an empty name");
    expect_list_bad("n[1-99999999]", "too many nodes");
}

int main(void)
{
    test_cpus_forms();
    test_cpus_bad();
    test_node_order();
    test_overlap_versions();
    test_srun_version();
    test_srun_argv();
    test_nodelist();
    return CHECK_DONE();
}
