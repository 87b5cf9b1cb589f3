/* Golden tests of the text renderers: Python's float repr, the seed's
 * lines, tqdm-style bar lines (the seed's own bars, partial blocks), the
 * in-place bar blocks of several nodes, resize and the non-terminal
 * fallback. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "telemetry/internal.h"
#include "telemetry_samples.h"

#define CHECK_STR(got, want)                                                 \
    do {                                                                     \
        if (strcmp((got), (want)) != 0) {                                    \
            fprintf(stderr, "%s:%d: got  [%s]\n%*swant [%s]\n", __FILE__,    \
                    __LINE__, (got), (int)strlen(__FILE__) + 8, "", (want)); \
            check_failures++;                                                \
        }                                                                    \
    } while (0)

static void test_pyfloat(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"0.17", "0.17"},
        {"29.70", "29.7"},
        {"1.00", "1.0"},
        {"0.00", "0.0"},
        {"33.97", "33.97"},
        {"27.4", "27.4"},
        {"123.45", "123.45"},
        {"0.1", "0.1"},
        {"100", "100.0"},
        {"1e-05", "1e-05"},
        {"0.0001", "0.0001"},
        {"1e16", "1e+16"},
        {"1e15", "1000000000000000.0"},
        {"1.5e16", "1.5e+16"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"-2.5", "-2.5"},
        {"123456789.125", "123456789.125"},
        {"2.2250738585072014e-308", "2.2250738585072014e-308"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
    };
    char buf[40];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dv_telem_pyfloat(strtod(cases[i].in, NULL), buf, sizeof(buf));
        CHECK_STR(buf, cases[i].want);
    }
    dv_telem_pyfloat(0.1 + 0.2, buf, sizeof(buf));
    CHECK_STR(buf, "0.30000000000000004");
    dv_telem_pyfloat(NAN, buf, sizeof(buf));
    CHECK_STR(buf, "nan");
    dv_telem_pyfloat(-0.0, buf, sizeof(buf));
    CHECK_STR(buf, "-0.0");
}

static char *render_lines(const dv_telem_sample_t *s)
{
    static char out[4096];
    FILE *f = fmemopen(out, sizeof(out), "w");
    dv_telem_lines_write(f, s);
    fclose(f);
    return out;
}

static void test_lines(void)
{
    dv_telem_sample_t s;
    unsigned u1[1] = {0}, u4[4] = {10, 1, 0, 100};
    make_sample(&s, "pinoak0033", 0, strtod("0.17", NULL), 128, 1, u1);
    CHECK_STR(render_lines(&s), "nodename: pinoak0033 cpu load average 1 "
                                "minute: 0.17 device # 0 utilization: 0.00%\n");
    make_sample(&s, "pinoak0034", 0, strtod("29.70", NULL), 128, 4, u4);
    CHECK_STR(render_lines(&s),
              "nodename: pinoak0034 cpu load average 1 minute: 29.7 device # "
              "0 utilization: 10.00%\n"
              "nodename: pinoak0034 cpu load average 1 minute: 29.7 device # "
              "1 utilization: 1.00%\n"
              "nodename: pinoak0034 cpu load average 1 minute: 29.7 device # "
              "2 utilization: 0.00%\n"
              "nodename: pinoak0034 cpu load average 1 minute: 29.7 device # "
              "3 utilization: 100.00%\n");
    make_sample(&s, "cpuonly", 0, 1.0, 2, 0, NULL);
    CHECK_STR(render_lines(&s),
              "nodename: cpuonly cpu load average 1 minute: 1.0\n");
    snprintf(s.note, sizeof(s.note), "unavailable: nvml: x");
    s.valid &= ~DV_TELEM_LOAD;
    CHECK_STR(render_lines(&s),
              "nodename: cpuonly note: unavailable: nvml: x\n"
              "nodename: cpuonly cpu load average 1 minute: nan\n");
}

/* The seed's bars, without tqdm's rate and remaining time. */
static void test_bar_lines(void)
{
    static const struct {
        const char *desc;
        double n;
        int is_int;
        double el;
        const char *want;
    } cases[] = {
        {"pinoak0034 cpu load avg.", 22.07, 0, 55.9,
         "pinoak0034 cpu load avg.:  22%|██▏       | 22.07/100 [00:55]"},
        {"pinoak0034 device 0 util", 9, 1, 55,
         "pinoak0034 device 0 util:   9%|▉         | 9/100 [00:55]"},
        {"pinoak0034 device 1 util", 0, 1, 55,
         "pinoak0034 device 1 util:   0%|          | 0/100 [00:55]"},
        {"pinoak0033 cpu load avg.", 15.03, 0, 54,
         "pinoak0033 cpu load avg.:  15%|█▌        | 15.03/100 [00:54]"},
        {"pinoak0036 cpu load avg.", 6.56, 0, 32,
         "pinoak0036 cpu load avg.:   7%|▋         | 6.56/100 [00:32]"},
        {"pinoak0035 cpu load avg.", 16.46, 0, 32,
         "pinoak0035 cpu load avg.:  16%|█▋        | 16.46/100 [00:32]"},
        {"pinoak0034 cpu load avg.", 11.42, 0, 32,
         "pinoak0034 cpu load avg.:  11%|█▏        | 11.42/100 [00:32]"},
        {"pinoak0033 device 0 util", 8, 1, 32,
         "pinoak0033 device 0 util:   8%|▊         | 8/100 [00:32]"},
        {"x", 100, 1, 3725, "x: 100%|██████████| 100/100 [1:02:05]"},
        {"x", 37.5, 0, 61, "x:  38%|███▊      | 37.5/100 [01:01]"},
        {"x", 4.9, 0, 0, "x:   5%|▍         | 4.9/100 [00:00]"},
        {"x", 6.25, 0, 0, "x:   6%|▋         | 6.25/100 [00:00]"},
        {"x", 163.28, 0, 0, "x: 163%|██████████| 163.28/100 [00:00]"},
        {"x", NAN, 0, 0, "x: nan%|          | nan/100 [00:00]"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dv__telem_bar_line(buf, sizeof(buf), cases[i].desc, cases[i].n,
                           cases[i].is_int, cases[i].el);
        CHECK_STR(buf, cases[i].want);
    }
    dv_telem_sample_t s;
    make_sample(&s, "n", 0, 28.25, 128, 0, NULL);
    CHECK(dv__telem_load_percent(&s) == 22.07);
    s.valid &= ~DV_TELEM_NCPU;
    CHECK(dv__telem_load_percent(&s) == 2825.0);
}

static void test_bar_blocks(void)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    dv_telem_bars_t *b = dv_telem_bars_create(f, 1, 0, NULL);
    dv_telem_sample_t s;
    unsigned ua[2] = {9, 0}, ub[1] = {100};
    make_sample(&s, "pinoak0034", 0, 28.25, 128, 2, ua);
    CHECK_EQ_INT(dv_telem_bars_update(b, &s, NULL), 0);
    make_sample(&s, "pinoak0033", 1, 19.24, 128, 1, ub);
    CHECK_EQ_INT(dv_telem_bars_update(b, &s, NULL), 0);
    make_sample(&s, "pinoak0034", 55.2, 28.25, 128, 2, ua);
    CHECK_EQ_INT(dv_telem_bars_update(b, &s, NULL), 0);
    fflush(f);
    const char *a0 =
        "pinoak0034 cpu load avg.:  22%|██▏       | 22.07/100 [00:00]\x1b[K\n"
        "pinoak0034 device 0 util:   9%|▉         | 9/100 [00:00]\x1b[K\n"
        "pinoak0034 device 1 util:   0%|          | 0/100 [00:00]\x1b[K\n";
    const char *b0 =
        "pinoak0033 cpu load avg.:  15%|█▌        | 15.03/100 [00:00]\x1b[K\n"
        "pinoak0033 device 0 util: 100%|██████████| 100/100 [00:00]\x1b[K\n";
    const char *a1 =
        "pinoak0034 cpu load avg.:  22%|██▏       | 22.07/100 [00:55]\x1b[K\n"
        "pinoak0034 device 0 util:   9%|▉         | 9/100 [00:55]\x1b[K\n"
        "pinoak0034 device 1 util:   0%|          | 0/100 [00:55]\x1b[K\n";
    char want[4096];
    snprintf(want, sizeof(want), "%s\r\x1b[3A%s%s\r\x1b[5A%s%s", a0, a0, b0, a1,
             b0);
    CHECK_STR(out, want);

    /* resized to 20 columns: lines cut, the screen below cleared */
    size_t mark = len;
    dv_telem_bars_resize(b, 20);
    dv_telem_bars_update(b, &s, NULL);
    fflush(f);
    CHECK_STR(out + mark,
              "\r\x1b[5A\x1b[Jpinoak0034 cpu load \x1b[K\n"
              "pinoak0034 device 0 \x1b[K\npinoak0034 device 1 \x1b[K\n"
              "pinoak0033 cpu load \x1b[K\npinoak0033 device 0 \x1b[K\n");
    dv_telem_bars_destroy(&b);
    CHECK(b == NULL);
    fclose(f);
    free(out);
}

static void test_bars_not_a_tty(void)
{
    char out[1024] = "";
    FILE *f = fmemopen(out, sizeof(out), "w");
    dv_telem_bars_t *b = dv_telem_bars_create(f, 0, 80, NULL);
    dv_telem_sample_t s;
    unsigned u[1] = {3};
    make_sample(&s, "h", 0, 0.5, 4, 1, u);
    dv_telem_bars_update(b, &s, NULL);
    fclose(f);
    CHECK_STR(out, "nodename: h cpu load average 1 minute: 0.5 device # 0 "
                   "utilization: 3.00%\n");
    dv_telem_bars_destroy(&b);
    CHECK(dv_telem_bars_create(NULL, 1, 0, NULL) == NULL);
}

/* A terminal that went away: the update fails, it does not crash. */
static void test_bars_closed(void)
{
    FILE *f = fopen("/dev/full", "w");
    if (!f)
        return;
    dv_telem_bars_t *b = dv_telem_bars_create(f, 1, 0, NULL);
    dv_telem_sample_t s;
    dv_error_t err;
    make_sample(&s, "h", 0, 0.5, 4, 0, NULL);
    CHECK_EQ_INT(dv_telem_bars_update(b, &s, &err), -1);
    CHECK(strstr(err.text, "bars: write") != NULL);
    dv_telem_bars_destroy(&b);
    fclose(f);
}

int main(void)
{
    test_pyfloat();
    test_lines();
    test_bar_lines();
    test_bar_blocks();
    test_bars_not_a_tty();
    test_bars_closed();
    return CHECK_DONE();
}
