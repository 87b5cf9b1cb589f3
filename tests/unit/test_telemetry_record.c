/* Tests of the sample record: round trips, every truncation, every single
 * corrupted byte, unknown versions, out-of-range values, random bytes. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "telemetry_samples.h"

static unsigned char buf[DV_TELEM_RECORD_MAX];

static int same(const dv_telem_sample_t *a, const dv_telem_sample_t *b)
{
    if (strcmp(a->node, b->node) || a->time_ns != b->time_ns ||
        a->valid != b->valid || a->load1 != b->load1 || a->load5 != b->load5 ||
        a->load15 != b->load15 || a->cpu_percent != b->cpu_percent ||
        a->ncpus != b->ncpus || a->mem_used != b->mem_used ||
        a->mem_total != b->mem_total || a->ngpus != b->ngpus ||
        strcmp(a->note, b->note))
        return 0;
    for (int i = 0; i < a->ngpus; i++) {
        const dv_telem_gpu_t *x = &a->gpus[i], *y = &b->gpus[i];
        if (x->index != y->index || x->vendor != y->vendor ||
            x->valid != y->valid || strcmp(x->name, y->name) ||
            strcmp(x->uuid, y->uuid) || x->util_gpu != y->util_gpu ||
            x->util_mem != y->util_mem || x->mem_used != y->mem_used ||
            x->mem_total != y->mem_total || x->temp_c != y->temp_c ||
            x->power_mw != y->power_mw)
            return 0;
    }
    return 1;
}

static void test_round_trip(void)
{
    static dv_telem_sample_t s, d;
    unsigned utils[DV_TELEM_MAX_GPUS];
    for (int i = 0; i < DV_TELEM_MAX_GPUS; i++)
        utils[i] = (unsigned)(i * 3);
    int counts[] = {0, 1, 4, DV_TELEM_MAX_GPUS};
    for (int k = 0; k < 4; k++) {
        make_sample(&s, "pinoak0033", 55, 28.25, 128, counts[k], utils);
        if (k == 3) {
            memset(s.note, 'n', sizeof(s.note) - 1);
            s.gpus[0].temp_c = -5;
            s.gpus[1].vendor = DV_TELEM_VENDOR_AMD;
            memset(s.gpus[1].name, 'x', sizeof(s.gpus[1].name) - 1);
        }
        int len = dv_telem_record_encode(&s, buf, sizeof(buf), NULL);
        CHECK(len > 0 && len <= DV_TELEM_RECORD_MAX);
        CHECK_EQ_INT(dv_telem_record_decode(buf, (size_t)len, &d, NULL), 0);
        CHECK(same(&s, &d));
    }
}

static void test_bad_bytes(void)
{
    static dv_telem_sample_t s, d;
    unsigned utils[2] = {9, 100};
    dv_error_t err;
    make_sample(&s, "n", 1, 0.5, 4, 2, utils);
    snprintf(s.note, sizeof(s.note), "a note");
    int len = dv_telem_record_encode(&s, buf, sizeof(buf), NULL);
    CHECK(len > 0);
    if (len <= 0)
        return;
    for (int n = 0; n < len; n++) { /* every truncation */
        errno = 0;
        CHECK_EQ_INT(dv_telem_record_decode(buf, (size_t)n, &d, &err), -1);
        CHECK(errno == EPROTO);
    }
    unsigned char longer[DV_TELEM_RECORD_MAX + 1];
    memcpy(longer, buf, (size_t)len);
    longer[len] = 0;
    CHECK_EQ_INT(dv_telem_record_decode(longer, (size_t)len + 1, &d, NULL), -1);
    for (int i = 0; i < len; i++) { /* flip each byte: no crash */
        for (int v = 0; v < 256; v += 37) {
            unsigned char copy[DV_TELEM_RECORD_MAX];
            memcpy(copy, buf, (size_t)len);
            copy[i] ^= (unsigned char)(v | 1);
            if (dv_telem_record_decode(copy, (size_t)len, &d, NULL) == 0)
                CHECK(d.ngpus <= DV_TELEM_MAX_GPUS &&
                      strlen(d.node) < sizeof(d.node));
        }
    }
    buf[4] = 2; /* version 2 */
    errno = 0;
    CHECK_EQ_INT(dv_telem_record_decode(buf, (size_t)len, &d, &err), -1);
    CHECK(errno == ENOTSUP && strstr(err.text, "unknown version 2"));
    CHECK_EQ_INT(dv_telem_record_decode(NULL, 0, &d, NULL), -1);
    srand(7);
    for (int k = 0; k < 20000; k++) { /* random bytes with a good header */
        unsigned char r[256];
        size_t n = (size_t)(rand() % (int)sizeof(r));
        for (size_t i = 0; i < n; i++)
            r[i] = (unsigned char)rand();
        if (n >= 6)
            memcpy(r, "DVTS\x01\x00", 6);
        dv_telem_record_decode(r, n, &d, NULL);
    }
}

static void test_encode_refuses(void)
{
    static dv_telem_sample_t s;
    unsigned utils[1] = {50};
    make_sample(&s, "n", 1, 0.5, 4, 1, utils);
    CHECK_EQ_INT(dv_telem_record_encode(&s, buf, 10, NULL), -1);
    CHECK(errno == ENOBUFS);
    s.load1 = NAN;
    CHECK_EQ_INT(dv_telem_record_encode(&s, buf, sizeof(buf), NULL), -1);
    CHECK(errno == EINVAL);
    s.load1 = 1;
    s.gpus[0].util_gpu = 101;
    CHECK_EQ_INT(dv_telem_record_encode(&s, buf, sizeof(buf), NULL), -1);
    s.gpus[0].util_gpu = 1;
    s.node[0] = '\n';
    CHECK_EQ_INT(dv_telem_record_encode(&s, buf, sizeof(buf), NULL), -1);
    s.node[0] = 'n';
    s.ngpus = DV_TELEM_MAX_GPUS + 1;
    CHECK_EQ_INT(dv_telem_record_encode(&s, buf, sizeof(buf), NULL), -1);
}

int main(void)
{
    test_round_trip();
    test_bad_bytes();
    test_encode_refuses();
    return CHECK_DONE();
}
