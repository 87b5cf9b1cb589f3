/* The message codec: round trips, every malformed input rejected, and
 * whole messages with a passed fd over a socket pair. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "lib/msg.h"

static void test_fields(void)
{
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_u32(&w, 0xdeadbeef);
    dv__msgw_i32(&w, -5);
    dv__msgw_u64(&w, 0x0123456789abcdefull);
    dv__msgw_str(&w, "task");
    dv__msgw_bytes(&w, "\0\1", 2);
    CHECK(!w.failed);
    dv__msgr_t r;
    dv__msgr_init(&r, w.buf, w.len);
    CHECK_EQ_INT(dv__msgr_u32(&r), 0xdeadbeef);
    CHECK_EQ_INT(dv__msgr_i32(&r), -5);
    CHECK(dv__msgr_u64(&r) == 0x0123456789abcdefull);
    char s[8];
    dv__msgr_str(&r, s, sizeof(s));
    CHECK(strcmp(s, "task") == 0);
    const void *p;
    CHECK_EQ_INT(dv__msgr_bytes(&r, &p), 2);
    CHECK(!r.bad && r.left == 0);
    CHECK_EQ_INT(dv__msgr_u32(&r), 0);
    CHECK(r.bad);

    /* A string that does not fit, one with a NUL, a length past the end. */
    dv__msgr_init(&r, w.buf, w.len);
    dv__msgr_u32(&r);
    dv__msgr_i32(&r);
    dv__msgr_u64(&r);
    dv__msgr_str(&r, s, 4);
    CHECK(r.bad && s[0] == 0);
    dv__msgr_init(&r, w.buf + 16, w.len - 16);
    dv__msgr_str(&r, s, sizeof(s));
    dv__msgr_str(&r, s, sizeof(s));
    CHECK(r.bad);
    uint8_t big[6] = {0xff, 0xff, 0xff, 0x7f, 'a', 'b'};
    dv__msgr_init(&r, big, sizeof(big));
    CHECK_EQ_INT(dv__msgr_bytes(&r, &p), 0);
    CHECK(r.bad && p == NULL);
    dv__msgw_free(&w);
}

static void test_header(void)
{
    uint8_t h[DV_MSG_HDR];
    uint16_t t;
    size_t n;
    dv__msg_hdr_pack(h, DV_MSG_START, 77);
    CHECK_EQ_INT(dv__msg_hdr_parse(h, &t, &n), 0);
    CHECK_EQ_INT(t, DV_MSG_START);
    CHECK_EQ_INT(n, 77);
    h[0] ^= 1;
    CHECK_EQ_INT(dv__msg_hdr_parse(h, &t, &n), -1);
    CHECK_EQ_INT(errno, EPROTO);
    dv__msg_hdr_pack(h, 99, 1);
    CHECK_EQ_INT(dv__msg_hdr_parse(h, &t, &n), -1);
    dv__msg_hdr_pack(h, 0, 1);
    CHECK_EQ_INT(dv__msg_hdr_parse(h, &t, &n), -1);
    dv__msg_hdr_pack(h, DV_MSG_OK, DV_MSG_BODY_MAX + 1);
    CHECK_EQ_INT(dv__msg_hdr_parse(h, &t, &n), -1);
    CHECK_EQ_INT(errno, EMSGSIZE);
}

static void test_socket(void)
{
    int sv[2];
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    dv__msgw_t w;
    dv__msgw_init(&w);
    dv__msgw_i32(&w, 12);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK_EQ_INT(dv__msg_send(sv[0], DV_MSG_OK, &w, "tail", 4, fd), 0);
    close(fd);
    uint16_t t;
    void *body;
    size_t len;
    int got = -1;
    CHECK_EQ_INT(dv__msg_recv(sv[1], &t, &body, &len, &got), 0);
    CHECK_EQ_INT(t, DV_MSG_OK);
    CHECK_EQ_INT(len, 8);
    CHECK(got >= 0);
    dv__msgr_t r;
    dv__msgr_init(&r, body, len);
    CHECK_EQ_INT(dv__msgr_i32(&r), 12);
    const void *tail;
    CHECK_EQ_INT(dv__msgr_tail(&r, &tail), 4);
    CHECK(memcmp(tail, "tail", 4) == 0);
    free(body);
    if (got >= 0)
        close(got);
    /* Garbage, then a truncated message, then end of stream. */
    CHECK_EQ_INT(write(sv[0], "garbage-bytes", 13), 13);
    CHECK_EQ_INT(dv__msg_recv(sv[1], &t, &body, &len, NULL), -1);
    CHECK_EQ_INT(errno, EPROTO);
    uint8_t h[DV_MSG_HDR];
    dv__msg_hdr_pack(h, DV_MSG_OK, 100);
    CHECK_EQ_INT(write(sv[0], h, sizeof(h)), (long)sizeof(h));
    close(sv[0]);
    CHECK_EQ_INT(dv__msg_recv(sv[1], &t, &body, &len, NULL), -1);
    CHECK(body == NULL);
    close(sv[1]);
    dv__msgw_free(&w);
}

int main(void)
{
    test_fields();
    test_header();
    test_socket();
    return CHECK_DONE();
}
