/* The hostfile launcher's pieces: host files (comments, blanks, Open MPI's
 * slots= and MPICH's host:N, every kind of bad line named by number), template
 * expansion (ssh and nsenter styles), and a launch whose keys arrive on stdin,
 * not in argv. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "multinode/launch.h"

static int parse(const char *text, dv_hostlist_t *l, dv_error_t *err)
{
    return dv__hostfile_parse_text(text, strlen(text), l, err);
}

static void test_hostfile_good(void)
{
    dv_hostlist_t l;
    const char *text = "# the nodes\n"
                       "node1\n"
                       "\n"
                       "  node2  # trailing comment\r\n"
                       "\tn-3.example.org\n"
                       "10.213.0.4";
    CHECK(parse(text, &l, NULL) == 0);
    CHECK_EQ_INT(l.n, 4);
    if (l.n == 4) {
        CHECK(!strcmp(l.hosts[0], "node1"));
        CHECK(!strcmp(l.hosts[1], "node2"));
        CHECK(!strcmp(l.hosts[2], "n-3.example.org"));
        CHECK(!strcmp(l.hosts[3], "10.213.0.4"));
    }
    dv__hostlist_free(&l);
    CHECK(l.n == 0 && l.hosts == NULL);
    dv__hostlist_free(NULL);
}

static void expect_bad(const char *text, size_t len, const char *why)
{
    dv_hostlist_t l = {NULL, 0, NULL};
    dv_error_t err = {{0}};
    CHECK(dv__hostfile_parse_text(text, len, &l, &err) == -1);
    CHECK(errno == EINVAL);
    CHECK(l.n == 0 && l.hosts == NULL);
    if (!strstr(err.text, why)) {
        fprintf(stderr, "expected '%s', got '%s'\n", why, err.text);
        check_failures++;
    }
}

static void test_hostfile_bad(void)
{
    expect_bad("", 0, "no host");
    expect_bad("# only\n\n  \n", 11, "no host");
    expect_bad("a\nb c\n", 6, "line 2: one host a line");
    expect_bad("a\nb\na\n", 6, "line 3: duplicate host 'a' (line 1)");
    expect_bad("a;rm\n", 5, "line 1: character 0x3b");
    expect_bad("-oProxy\n", 8, "line 1: not a host name");
    expect_bad("a\n\0b\n", 5, "line 2: NUL byte");
    char big[300];
    memset(big, 'x', sizeof(big));
    expect_bad(big, sizeof(big), "line 1: not a host name");
}

/* Open MPI's "host slots=N [max_slots=M]" and MPICH's "host:N" give the
 * node's CPU count; a line without one gives 0; IPv6 names stay names. */
static void test_hostfile_slots(void)
{
    dv_hostlist_t l;
    dv_error_t err = {{0}};
    const char *text = "n1 slots=24\n"
                       "n2\tslots=8   max_slots=16 # comment\n"
                       "n3\n"
                       "n4:12\n"
                       "fe80::1\n"
                       "n5 max-slots=4 slots=2\n"
                       "n6:x\n";
    CHECK(dv__hostfile_parse_text(text, strlen(text), &l, &err) == 0);
    CHECK_EQ_INT(l.n, 7);
    const char *host[] = {"n1", "n2", "n3", "n4", "fe80::1", "n5", "n6:x"};
    const int slots[] = {24, 8, 0, 12, 0, 2, 0};
    for (int i = 0; i < l.n && i < 7; i++) {
        CHECK(!strcmp(l.hosts[i], host[i]));
        CHECK_EQ_INT(l.slots[i], slots[i]);
    }
    dv__hostlist_free(&l);
    CHECK(l.slots == NULL);
    /* The name without its ":N" is what the duplicate check sees. */
    text = "n1:4\nn1 slots=2\n";
    CHECK(dv__hostfile_parse_text(text, strlen(text), &l, &err) == -1);
    CHECK(strstr(err.text, "line 2: duplicate host 'n1' (line 1)") != NULL);
}

static void test_hostfile_slots_bad(void)
{
    expect_bad("n1 cores=4\n", 11, "line 1: unknown key 'cores' (known: ");
    expect_bad("a\nn1 slots=0\n", 14,
               "line 2: slots: '0' is not a number in 1..1048576");
    expect_bad("n1 slots=x4\n", 12, "line 1: slots: 'x4' is not a number");
    expect_bad("n1 slots=\n", 10, "line 1: slots: '' is not a number");
    expect_bad("n1 slots=1048577\n", 17, "line 1: slots: '1048577'");
    expect_bad("n1 slots=99999999999\n", 21, "line 1: slots: '99999999999'");
    expect_bad("n1 max_slots=-1\n", 16, "line 1: max_slots: '-1'");
    expect_bad("n1 slots=2 slots=3\n", 19, "line 1: slots given twice");
    expect_bad("n1:2 slots=3\n", 13, "line 1: slots given twice");
    expect_bad("n1:0\n", 5, "line 1: host:N: '0' is not a number");
    expect_bad("n1 =4\n", 6, "line 1: unknown key ''");
    expect_bad("n1 slots=4\x01\n", 12, "line 1: character 0x01");
    expect_bad(":4\n", 3, "line 1: not a host name");
}

static void test_hostfile_read(void)
{
    char path[] = "/tmp/drover-test-hostfile.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "n1\nn1\n", 6) == 6);
    close(fd);
    dv_hostlist_t l;
    dv_error_t err = {{0}};
    CHECK(dv__hostfile_read(path, &l, &err) == -1);
    CHECK(strstr(err.text, path) && strstr(err.text, "line 2: duplicate"));
    unlink(path);
    CHECK(dv__hostfile_read(path, &l, &err) == -1 && errno == ENOENT);
    CHECK(strstr(err.text, path) != NULL);
}

/* Large host files: the duplicate check must not be quadratic (one million
 * lines took hours that way, 100,000 took 17 s; CTest's timeout catches
 * it). A duplicate is still named with both lines. */
static void test_hostfile_large(void)
{
    const int n = 1000000;
    size_t cap = (size_t)n * 12 + 16, len = 0;
    char *text = malloc(cap);
    CHECK(text != NULL);
    if (!text)
        return;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "h%d\n", i);
    dv_hostlist_t l;
    dv_error_t err = {{0}};
    CHECK(dv__hostfile_parse_text(text, len, &l, &err) == 0);
    CHECK_EQ_INT(l.n, n);
    if (l.n == n)
        CHECK(!strcmp(l.hosts[n - 1], "h999999"));
    dv__hostlist_free(&l);
    len += (size_t)snprintf(text + len, cap - len, "h123456\n");
    CHECK(dv__hostfile_parse_text(text, len, &l, &err) == -1);
    CHECK(strstr(err.text, "line 1000001: duplicate host 'h123456' "
                           "(line 123457)") != NULL);
    free(text);
}

/* Names the node table can hold: one word of [A-Za-z0-9._:-]. */
static void test_host_name_valid(void)
{
    CHECK(dv__host_name_valid("node-1.example.org"));
    CHECK(dv__host_name_valid("10.213.0.4"));
    CHECK(dv__host_name_valid("fe80::1"));
    const char *bad[] = {"",      "a b", "a\nb", "a\tb",       "a\rb",
                         "a\x7f", "-x",  "a;b",  "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (dv__host_name_valid(bad[i])) {
            fprintf(stderr, "accepted bad name %zu\n", i);
            check_failures++;
        }
    char big[DV_HOST_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    CHECK(!dv__host_name_valid(big));
    big[DV_HOST_MAX] = 0;
    CHECK(dv__host_name_valid(big));
}

static int argv_is(char **argv, const char *const *want)
{
    int i = 0;
    for (; argv && argv[i] && want[i]; i++)
        if (strcmp(argv[i], want[i]))
            return 0;
    return argv && !argv[i] && !want[i];
}

static void test_expand(void)
{
    char *cmd[] = {"/opt/drover/bin/drover", "agent",        "--head",
                   "tcp://10.213.0.1:7000",  "--keys-stdin", NULL};
    char **a =
        dv__launch_expand(DV_LAUNCH_DEFAULT_TEMPLATE, "node3", cmd, NULL);
    const char *ssh[] = {"ssh",
                         "-o",
                         "BatchMode=yes",
                         "node3",
                         "/opt/drover/bin/drover",
                         "agent",
                         "--head",
                         "tcp://10.213.0.1:7000",
                         "--keys-stdin",
                         NULL};
    CHECK(argv_is(a, ssh));
    dv__launch_argv_free(a);
    a = dv__launch_expand("nsenter --net=/run/netns/{host} "
                          "--uts=/x/{host}.{host} -- {cmd}",
                          "n2", cmd, NULL);
    const char *ns[] = {"nsenter", "--net=/run/netns/n2",    "--uts=/x/n2.n2",
                        "--",      "/opt/drover/bin/drover", "agent",
                        "--head",  "tcp://10.213.0.1:7000",  "--keys-stdin",
                        NULL};
    CHECK(argv_is(a, ns));
    dv__launch_argv_free(a);
    dv__launch_argv_free(NULL);

    dv_error_t err = {{0}};
    CHECK(dv__launch_expand("ssh {host}", "n", cmd, &err) == NULL);
    CHECK(errno == EINVAL && strstr(err.text, "{cmd}"));
    CHECK(dv__launch_expand("x {cmd} {cmd}", "n", cmd, &err) == NULL);
    CHECK(dv__launch_expand("sh -c '{cmd}'", "n", cmd, &err) == NULL);
    char *unsafe[] = {"drover", "a b", NULL};
    CHECK(dv__launch_expand("{cmd}", "n", unsafe, &err) == NULL);
    CHECK(strstr(err.text, "'a b'") != NULL);
    char *empty[] = {NULL};
    CHECK(dv__launch_expand("{cmd}", "n", empty, &err) == NULL);
}

/* Read what fd gives within 5 s (until EOF). */
static void read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (n + 1 < cap && poll(&p, 1, 5000) > 0) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
}

static void test_spawn(void)
{
    const char *keys = "drover-keys-1 secret-words\n";
    char *argv[] = {"sh", "-c",
                    "read -r line; echo \"stdin:$line\"; "
                    "tr '\\0' ' ' </proc/$$/cmdline; echo; "
                    "echo oops >&2; exit 3",
                    NULL};
    int out[2];
    CHECK(pipe(out) == 0);
    dv_launch_child_t c;
    dv_error_t err = {{0}};
    CHECK(dv__launch_spawn(argv, keys, out[1], &c, &err) == 0);
    close(out[1]);
    char buf[512], ebuf[128];
    read_all(out[0], buf, sizeof(buf));
    read_all(c.err_fd, ebuf, sizeof(ebuf));
    CHECK(strstr(buf, "stdin:drover-keys-1 secret-words") != NULL);
    CHECK(strstr(strchr(buf, '\n') ? strchr(buf, '\n') : buf, "secret") ==
          NULL);
    CHECK(!strcmp(ebuf, "oops\n"));
    int st;
    CHECK(waitpid(c.pid, &st, 0) == c.pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    close(c.err_fd);
    close(out[0]);

    char *missing[] = {"/nonexistent/launcher", NULL};
    CHECK(dv__launch_spawn(missing, keys, -1, &c, &err) == -1);
    CHECK(errno == ENOENT && strstr(err.text, "/nonexistent/launcher"));
    /* A child that exits without reading its stdin does not hurt us. */
    char *quick[] = {"true", NULL};
    CHECK(dv__launch_spawn(quick, keys, -1, &c, &err) == 0);
    CHECK(waitpid(c.pid, &st, 0) == c.pid && WIFEXITED(st));
    close(c.err_fd);
}

int main(void)
{
    test_hostfile_good();
    test_hostfile_bad();
    test_hostfile_slots();
    test_hostfile_slots_bad();
    test_hostfile_read();
    test_hostfile_large();
    test_host_name_valid();
    test_expand();
    test_spawn();
    return CHECK_DONE();
}
