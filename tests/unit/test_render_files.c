/* The JSONL log parsed back by Python's json module, and the SVG timeline
 * checked as well-formed XML (xmllint) and rendered to PNG (rsvg-convert):
 * three nodes (no GPU, 2 GPUs, 4 GPUs, one lost mid-run), a gap in the
 * CPU data, and a long run that gets thinned. DV_TELEM_KEEP=DIR keeps the
 * files for a look. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "telemetry_samples.h"

static char dir[256];

static void fill(dv_telem_sample_t *s, const char *node, int t, int ngpus)
{
    unsigned u[4];
    for (int i = 0; i < 4; i++)
        u[i] = (unsigned)(50 + 45 * sin(t / (7.0 + 5 * i) + i));
    make_sample(s, node, t, 0.5 + t / 20.0, 8, ngpus, u);
    s->cpu_percent = 50 + 40 * sin(t / 9.0);
    s->mem_used = (uint64_t)((0.2 + t / 400.0) * (double)s->mem_total);
    if (strcmp(node, "gpu-b") == 0 && t > 80) /* GPU 3 lost */
        s->ngpus = 3;
    if (strcmp(node, "cpu-only") == 0 && t >= 40 && t < 50)
        s->valid &= ~DV_TELEM_CPU;
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "failed (%d): %s\n", rc, cmd);
    return rc;
}

static void test_files(void)
{
    char jpath[300], spath[300], cmd[2048];
    snprintf(jpath, sizeof(jpath), "%s/t.jsonl", dir);
    snprintf(spath, sizeof(spath), "%s/t.svg", dir);
    FILE *j = fopen(jpath, "w");
    dv_telem_svg_t *v = dv_telem_svg_create(NULL);
    dv_telem_sample_t s;
    const char *nodes[] = {"cpu-only", "gpu-a", "gpu-b"};
    int gpus[] = {0, 2, 4};
    for (int t = 0; t <= 120; t++)
        for (int n = 0; n < 3; n++) {
            fill(&s, nodes[n], t, gpus[n]);
            if (t == 0 && n == 0)
                snprintf(s.note, sizeof(s.note), "unavailable: \"q\" \\ <x>");
            CHECK_EQ_INT(dv_telem_jsonl_write(j, &s), 0);
            CHECK_EQ_INT(dv_telem_svg_add(v, &s, NULL), 0);
        }
    fclose(j);
    FILE *f = fopen(spath, "w");
    CHECK_EQ_INT(dv_telem_svg_write(v, f, NULL), 0);
    fclose(f);
    dv_telem_svg_destroy(&v);
    CHECK(v == NULL);
    snprintf(
        cmd, sizeof(cmd),
        "python3 -c '\n"
        "import json, sys\n"
        "rows = [json.loads(l) for l in open(sys.argv[1])]\n"
        "assert len(rows) == 363, len(rows)\n"
        "r = rows[0]\n"
        "assert r[\"node\"] == \"cpu-only\" and r[\"gpus\"] == []\n"
        "assert r[\"note\"] == \"unavailable: \\\"q\\\" \\\\ <x>\", "
        "r[\"note\"]\n"
        "assert r[\"time\"] == \"2026-09-21T14:13:20.000000Z\", r[\"time\"]\n"
        "g = rows[2][\"gpus\"][3]\n"
        "assert g[\"util_gpu\"] == rows[2][\"gpus\"][3][\"util_gpu\"]\n"
        "for k in (\"index\", \"vendor\", \"name\", \"uuid\", \"util_gpu\",\n"
        "          \"util_mem\", \"mem_used\", \"mem_total\", \"temp_c\",\n"
        "          \"power_w\"):\n"
        "    assert k in g, k\n"
        "assert g[\"vendor\"] == \"nvidia\" and g[\"mem_total\"] == 40 << 30\n"
        "for k in (\"load1\", \"load5\", \"load15\", \"cpu_percent\",\n"
        "          \"ncpus\", \"mem_used\", \"mem_total\"):\n"
        "    assert k in r, k\n"
        "assert rows[3 * 45][\"cpu_percent\"] is None\n"
        "assert rows[3 * 100 + 2][\"gpus\"][-1][\"index\"] == 2\n"
        "' %s",
        jpath);
    CHECK_EQ_INT(run(cmd), 0);
    snprintf(cmd, sizeof(cmd), "xmllint --noout %s", spath);
    CHECK_EQ_INT(run(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "rsvg-convert -o %s/t.png %s && head -c 8 %s/t.png | od -An -c "
             "| grep -q 'P   N   G'",
             dir, spath, dir);
    CHECK_EQ_INT(run(cmd), 0);
}

/* Thousands of samples of one node: thinned, still valid. */
static void test_long_run(void)
{
    char spath[300], cmd[1200];
    snprintf(spath, sizeof(spath), "%s/long.svg", dir);
    dv_telem_svg_t *v = dv_telem_svg_create(NULL);
    dv_telem_sample_t s;
    for (int t = 0; t < 5000; t++) {
        fill(&s, "gpu-a", t, 2);
        CHECK_EQ_INT(dv_telem_svg_add(v, &s, NULL), 0);
    }
    FILE *f = fopen(spath, "w");
    CHECK_EQ_INT(dv_telem_svg_write(v, f, NULL), 0);
    long size = ftell(f);
    fclose(f);
    CHECK(size > 0 && size < 400000);
    dv_telem_svg_destroy(&v);
    snprintf(cmd, sizeof(cmd),
             "xmllint --noout %s && rsvg-convert -o "
             "%s/long.png %s",
             spath, dir, spath);
    CHECK_EQ_INT(run(cmd), 0);
    v = dv_telem_svg_create(NULL); /* no samples at all */
    f = fopen(spath, "w");
    CHECK_EQ_INT(dv_telem_svg_write(v, f, NULL), 0);
    fclose(f);
    dv_telem_svg_destroy(&v);
    snprintf(cmd, sizeof(cmd), "xmllint --noout %s", spath);
    CHECK_EQ_INT(run(cmd), 0);
}

/* dv_telem_svg_save: the document at a path; a path that cannot be
 * written is an error that names it. */
static void test_save(void)
{
    char spath[300], bad[320];
    dv_error_t err = {""};
    dv_telem_sample_t s;
    dv_telem_svg_t *v = dv_telem_svg_create(NULL);
    fill(&s, "gpu-a", 1, 1);
    CHECK_EQ_INT(dv_telem_svg_add(v, &s, NULL), 0);
    snprintf(spath, sizeof(spath), "%s/saved.svg", dir);
    CHECK_EQ_INT(dv_telem_svg_save(v, spath, &err), 0);
    FILE *f = fopen(spath, "r");
    char head[6] = "";
    CHECK(f && fread(head, 1, 5, f) == 5 && strcmp(head, "<?xml") == 0);
    if (f)
        fclose(f);
    snprintf(bad, sizeof(bad), "%s/no-such-dir/x.svg", dir);
    CHECK_EQ_INT(dv_telem_svg_save(v, bad, &err), -1);
    CHECK_EQ_INT(errno, ENOENT);
    CHECK(strstr(err.text, bad) != NULL);
    CHECK_EQ_INT(dv_telem_svg_save(v, NULL, &err), -1);
    CHECK_EQ_INT(errno, EINVAL);
    dv_telem_svg_destroy(&v);
}

int main(void)
{
    const char *keep = getenv("DV_TELEM_KEEP");
    snprintf(dir, sizeof(dir), "%s", keep ? keep : "/tmp/dv-telem-fXXXXXX");
    if (!keep && !mkdtemp(dir))
        return 1;
    test_files();
    test_long_run();
    test_save();
    if (!keep) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        CHECK_EQ_INT(system(cmd), 0);
    }
    return CHECK_DONE();
}
