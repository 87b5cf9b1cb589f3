/* The control-plane codec: round trips, every truncation and corruption of
 * a valid message rejected with EPROTO, version mismatches naming both
 * versions, and random bytes never read out of bounds (run under ASan). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "transport/wire.h"

static uint8_t *sample(size_t *len)
{
    dv_wire_buf_t b = {0};
    CHECK(dv__wire_begin(&b, DV_WIRE_HELLO, 42, 0, NULL) == 0);
    dv__wire_put_str(&b, 1, "node3");
    dv__wire_put_u64(&b, 2, 0x0102030405060708ull);
    dv__wire_put(&b, 3, "", 0);
    CHECK(dv__wire_end(&b, NULL) == 0);
    return dv__wire_buf_take(&b, len);
}

static void test_round_trip(void)
{
    size_t len;
    uint8_t *p = sample(&len);
    dv_wire_view_t v;
    dv_error_t err = {{0}};
    CHECK(dv__wire_decode(p, len, &v, &err) == 0);
    CHECK_EQ_INT(v.type, DV_WIRE_HELLO);
    CHECK_EQ_INT(v.id, 42);
    CHECK_EQ_INT(v.nfields, 3);
    char host[16];
    uint64_t x = 0;
    CHECK(dv__wire_get_str(&v, 1, host, sizeof(host), NULL) == 0);
    CHECK(strcmp(host, "node3") == 0);
    CHECK(dv__wire_get_u64(&v, 2, &x, NULL) == 0);
    CHECK(x == 0x0102030405060708ull);
    CHECK(dv__wire_find(&v, 3) && dv__wire_find(&v, 3)->len == 0);
    CHECK(dv__wire_get_u64(&v, 9, &x, NULL) == -1 && errno == ENOENT);
    CHECK(dv__wire_get_u64(&v, 1, &x, NULL) == -1 && errno == EPROTO);
    char tiny[4];
    CHECK(dv__wire_get_str(&v, 1, tiny, sizeof(tiny), NULL) == -1 &&
          errno == ENAMETOOLONG);
    CHECK(strcmp(dv__wire_type_name(v.type), "hello") == 0);
    CHECK(strcmp(dv__wire_type_name(999), "unknown") == 0);
    /* Types are appended: the last one keeps its number and name. */
    CHECK_EQ_INT(DV_WIRE_OUTPUT_ACK, 15);
    CHECK(strcmp(dv__wire_type_name(DV_WIRE_OUTPUT_ACK), "output-ack") == 0);
    free(p);
}

static void test_truncations(void)
{
    size_t len;
    uint8_t *p = sample(&len);
    dv_wire_view_t v;
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, p, n);
        errno = 0;
        CHECK(dv__wire_decode(cut, n, &v, NULL) == -1);
        CHECK_EQ_INT(errno, EPROTO);
        free(cut);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, p, len);
    longer[len] = 0;
    CHECK(dv__wire_decode(longer, len + 1, &v, NULL) == -1);
    free(longer);
    free(p);
}

static void expect_bad(uint8_t *p, size_t len, size_t off, uint8_t value,
                       const char *why)
{
    uint8_t saved = p[off];
    dv_wire_view_t v;
    dv_error_t err = {{0}};
    p[off] = value;
    CHECK(dv__wire_decode(p, len, &v, &err) == -1 && errno == EPROTO);
    CHECK(strstr(err.text, why) != NULL);
    p[off] = saved;
}

static void test_corruptions(void)
{
    size_t len;
    uint8_t *p = sample(&len);
    expect_bad(p, len, 0, 'X', "not a drover message");
    expect_bad(p, len, 4, 7, "version 7, this drover speaks version 1");
    expect_bad(p, len, 6, 0, "unknown message type");
    expect_bad(p, len, 6, 200, "unknown message type");
    expect_bad(p, len, 16, 4, "truncated");
    expect_bad(p, len, 16, 2, "after the fields");
    expect_bad(p, len, 16, DV_WIRE_MAX_FIELDS + 1, "bad header");
    expect_bad(p, len, 18, 1, "bad header");
    expect_bad(p, len, 20, 0, "body length");
    /* First field's length byte 3 (high): claims ~16 MiB. */
    expect_bad(p, len, DV_WIRE_HEADER_SIZE + 5, 1, "says");
    free(p);
}

static void test_encoder_limits(void)
{
    dv_wire_buf_t b = {0};
    CHECK(dv__wire_begin(&b, 0, 1, 0, NULL) == -1 && errno == EINVAL);
    CHECK(dv__wire_begin(&b, DV_WIRE_TYPE_MAX + 1, 1, 0, NULL) == -1);
    CHECK(dv__wire_begin(&b, DV_WIRE_PING, 1, 0, NULL) == 0);
    for (int i = 0; i <= DV_WIRE_MAX_FIELDS; i++)
        dv__wire_put_u64(&b, 1, (uint64_t)i);
    CHECK(dv__wire_end(&b, NULL) == -1 && errno == E2BIG);
    dv__wire_buf_release(&b);
    CHECK(b.data == NULL);
    dv__wire_buf_release(NULL);
    CHECK(dv__wire_end(&b, NULL) == -1 && errno == EINVAL);
    /* A large field round-trips. */
    size_t big = 8u << 20;
    uint8_t *payload = calloc(1, big);
    payload[big - 1] = 0x5a;
    CHECK(dv__wire_begin(&b, DV_WIRE_PING, 7, big + 16, NULL) == 0);
    dv__wire_put(&b, 1, payload, big);
    CHECK(dv__wire_end(&b, NULL) == 0);
    dv_wire_view_t v;
    CHECK(dv__wire_decode(b.data, b.len, &v, NULL) == 0);
    CHECK(v.nfields == 1 && v.fields[0].len == big &&
          v.fields[0].data[big - 1] == 0x5a);
    dv__wire_buf_release(&b);
    free(payload);
}

/* Random bytes, and valid headers with random bodies. */
static void test_random(void)
{
    srand(1234);
    uint8_t buf[256];
    dv_wire_view_t v;
    int accepted = 0;
    for (int it = 0; it < 100000; it++) {
        size_t n = (size_t)rand() % sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rand();
        if (n >= DV_WIRE_HEADER_SIZE && (it & 1)) {
            uint32_t magic = DV_WIRE_MAGIC, body = (uint32_t)(n - 24);
            memcpy(buf, &magic, 4);
            buf[4] = 1, buf[5] = 0, buf[6] = (uint8_t)(1 + it % 10);
            buf[7] = 0, buf[17] = 0, buf[16] %= 4, buf[18] = buf[19] = 0;
            memcpy(buf + 20, &body, 4);
        }
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        if (dv__wire_decode(exact, n, &v, NULL) == 0) {
            accepted++;
            for (int f = 0; f < v.nfields; f++)
                CHECK(v.fields[f].data + v.fields[f].len <= exact + n);
        }
        free(exact);
    }
    CHECK(accepted > 0);
}

int main(void)
{
    test_round_trip();
    test_truncations();
    test_corruptions();
    test_encoder_limits();
    test_random();
    return CHECK_DONE();
}
