/* The data plane's authenticated link (src/lib/data_link.c) and the data
 * port's server on it (src/multinode/mn_data.c, served on a thread through
 * mn_data_serve_conn over a socket pair):
 *  - the handshake: both sides end with the same keys; a wrong token is
 *    refused by the server, a server that cannot prove the token by the
 *    client;
 *  - the wire byte for byte: proofs, keys and tags against known answers;
 *  - frames (small, and large ones over many slices) verify; one with a
 *    bit flipped in its header, body or tag, one replayed, one dropped,
 *    two swapped, one of the other direction: all refused;
 *  - the server answers an honest request, and hangs up on a forged,
 *    replayed or changed frame and on a wrong token, logging each. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"
#include "multinode/mn.h"
#include "lib/data_link.h"
#include "lib/remote.h"
#include "lib/remote_wire.h"

static const uint8_t token[DV_LINK_TOKEN] = "the job's token, 32 bytes long.";
static const uint8_t other[DV_LINK_TOKEN] = "not the job's token, 32 bytes..";

static void pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    int big = 4 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
}

struct client {
    dv__link_t l;
    int fd;
    const uint8_t *token;
    int rc, err;
    dv_error_t why;
};

static void *client_thread(void *arg)
{
    struct client *c = arg;
    c->rc = dv__link_connect(&c->l, c->fd, c->token, &c->why);
    c->err = errno;
    return NULL;
}

/* A link pair: the client's on fd c, the server's reading from its own
 * socket pair (so that the test can put any bytes in front of it): raw
 * bytes the client sends come out of *tap; what is written to *feed is
 * what the server link reads. */
struct links {
    dv__link_t c, s;
    int cfd, tap, sfd, feed;
};

static int make_links(struct links *k)
{
    int a[2], b[2];
    pair(a);
    pair(b);
    struct client cl = {.fd = a[0], .token = token};
    uint8_t hello[DV_LINK_HELLO], answer[DV_LINK_ANSWER], proof[DV_LINK_PROOF];
    pthread_t th;
    if (dv__link_hello(&k->s, a[1], hello) < 0 ||
        write(a[1], hello, sizeof(hello)) != (ssize_t)sizeof(hello) ||
        pthread_create(&th, NULL, client_thread, &cl) != 0)
        return -1;
    int rc = dv__data_read(a[1], answer, sizeof(answer)) == 0 &&
                     dv__link_accept(&k->s, token, answer, proof) == 0 &&
                     write(a[1], proof, sizeof(proof)) == sizeof(proof)
                 ? 0
                 : -1;
    pthread_join(th, NULL);
    k->c = cl.l;
    k->cfd = a[0];
    k->tap = a[1];
    k->sfd = b[0];
    k->feed = b[1];
    k->s.fd = b[0];
    return rc == 0 && cl.rc == 0 ? 0 : -1;
}

static void close_links(struct links *k)
{
    dv__link_free(&k->c);
    dv__link_free(&k->s);
    close(k->cfd);
    close(k->tap);
    close(k->sfd);
    close(k->feed);
}

/* The client sends a frame of hlen header bytes and blen body bytes; its
 * raw bytes are read from the tap into raw (returns their count). */
static size_t client_frame(struct links *k, const void *h, size_t hlen,
                           const void *b, size_t blen, uint8_t *raw)
{
    struct iovec v[2] = {{(void *)h, hlen}, {(void *)b, blen}};
    size_t n = hlen + blen + 2 * DV_LINK_TAG;
    if (dv__link_send(&k->c, v, 2, NULL, NULL) < 0 ||
        dv__data_read(k->tap, raw, n) < 0)
        return 0;
    return n;
}

/* The server link reads raw (a frame of hlen + blen bytes); 0, or -1
 * with errno. */
static int server_takes(struct links *k, const uint8_t *raw, size_t n,
                        size_t hlen, size_t blen)
{
    uint8_t h[256];
    uint8_t *b = malloc(blen ? blen : 1);
    if (write(k->feed, raw, n) != (ssize_t)n)
        abort();
    int rc = dv__link_read_head(&k->s, h, hlen) < 0 ||
                     dv__link_read(&k->s, b, blen) < 0 ||
                     dv__link_read_end(&k->s) < 0
                 ? -1
                 : 0;
    int e = errno;
    free(b);
    errno = e;
    return rc;
}

static void test_frames(void)
{
    struct links k;
    CHECK(make_links(&k) == 0);
    CHECK(!memcmp(k.c.tx_key, k.s.rx_key, DV_LINK_KEY));
    CHECK(!memcmp(k.s.tx_key, k.c.rx_key, DV_LINK_KEY));
    CHECK(memcmp(k.c.tx_key, k.c.rx_key, DV_LINK_KEY) != 0);
    uint8_t head[40] = "a header", raw[2][256];
    uint8_t body[64] = "a body";
    size_t n = client_frame(&k, head, sizeof(head), body, sizeof(body), raw[0]);
    CHECK(n > 0);
    CHECK_EQ_INT(server_takes(&k, raw[0], n, sizeof(head), sizeof(body)), 0);
    /* Replayed: the same bytes again. */
    CHECK(server_takes(&k, raw[0], n, sizeof(head), sizeof(body)) < 0);
    CHECK_EQ_INT(errno, EBADMSG);
    close_links(&k);

    /* A bit flipped anywhere: header, its tag, body, body's tag. */
    size_t at[] = {3, sizeof(head) + 5, sizeof(head) + DV_LINK_TAG + 10,
                   sizeof(head) + DV_LINK_TAG + sizeof(body) + 1};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        CHECK(make_links(&k) == 0);
        n = client_frame(&k, head, sizeof(head), body, sizeof(body), raw[0]);
        raw[0][at[i]] ^= 0x10;
        CHECK(server_takes(&k, raw[0], n, sizeof(head), sizeof(body)) < 0);
        CHECK_EQ_INT(errno, EBADMSG);
        close_links(&k);
    }

    /* A later frame first (two swapped, or one dropped). */
    CHECK(make_links(&k) == 0);
    n = client_frame(&k, head, sizeof(head), body, sizeof(body), raw[0]);
    client_frame(&k, head, sizeof(head), body, sizeof(body), raw[1]);
    CHECK(server_takes(&k, raw[1], n, sizeof(head), sizeof(body)) < 0);
    CHECK_EQ_INT(errno, EBADMSG);
    close_links(&k);

    /* A frame of the other direction (the server's own, reflected). */
    CHECK(make_links(&k) == 0);
    struct iovec v[2] = {{head, sizeof(head)}, {body, sizeof(body)}};
    int s2[2];
    pair(s2);
    int keep = k.s.fd;
    k.s.fd = s2[0];
    CHECK(dv__link_send(&k.s, v, 2, NULL, NULL) == 0);
    k.s.fd = keep;
    CHECK(dv__data_read(s2[1], raw[0], n) == 0);
    CHECK(server_takes(&k, raw[0], n, sizeof(head), sizeof(body)) < 0);
    close(s2[0]);
    close(s2[1]);
    close_links(&k);
}

/* A body of many slices, sent and read in odd pieces; a flip in its last
 * slice is found. */
static void *big_reader(void *arg)
{
    struct links *k = arg;
    static uint8_t got[(3 << 20) + 7];
    uint8_t h[16];
    size_t n = sizeof(got), off = 0, step = 100003;
    intptr_t rc = dv__link_read_head(&k->s, h, sizeof(h));
    while (rc == 0 && off < n) {
        size_t take = n - off < step ? n - off : step;
        rc = dv__link_read(&k->s, got + off, take);
        off += take;
    }
    if (rc == 0)
        rc = dv__link_read_end(&k->s);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (got[i] != (uint8_t)(i * 7))
            rc = -2;
    return (void *)rc;
}

struct big_send {
    dv__link_t *l;
    struct iovec v[3];
    int rc;
};

static void *big_sender(void *arg)
{
    struct big_send *b = arg;
    b->rc = dv__link_send(b->l, b->v, 3, NULL, NULL);
    return NULL;
}

static void test_big(int flip)
{
    struct links k;
    CHECK(make_links(&k) == 0);
    size_t n = (3 << 20) + 7, cut = flip ? n / 2 : 12345;
    size_t total = 16 + n + 2 * DV_LINK_TAG;
    uint8_t *b = malloc(n), *raw = malloc(total), h[16] = "big";
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 7);
    k.s.fd = k.tap; /* the server reads what the client's socket carries */
    struct big_send bs = {
        &k.c, {{h, sizeof(h)}, {b, cut}, {b + cut, n - cut}}, -1};
    pthread_t ts, tr;
    void *rc;
    if (flip) {
        /* Sent through a second pair, read whole, flipped in its last
         * slice, then passed on. */
        int s2[2];
        pair(s2);
        k.c.fd = s2[0];
        pthread_create(&ts, NULL, big_sender, &bs);
        CHECK(dv__data_read(s2[1], raw, total) == 0);
        pthread_join(ts, NULL);
        raw[total - DV_LINK_TAG - 100] ^= 1;
        pthread_create(&tr, NULL, big_reader, &k);
        CHECK(write(k.cfd, raw, total) == (ssize_t)total);
        pthread_join(tr, &rc);
        CHECK((intptr_t)rc == -1);
        close(s2[0]);
        close(s2[1]);
    } else {
        pthread_create(&tr, NULL, big_reader, &k);
        big_sender(&bs);
        pthread_join(tr, &rc);
        CHECK((intptr_t)rc == 0);
    }
    CHECK_EQ_INT(bs.rc, 0);
    free(b);
    free(raw);
    close_links(&k);
}

static void test_handshake(void)
{
    /* A wrong token: the server refuses it (EBADMSG), the client sees
     * the server hang up. */
    int a[2];
    pair(a);
    struct client cl = {.fd = a[0], .token = other};
    pthread_t th;
    pthread_create(&th, NULL, client_thread, &cl);
    dv__link_t s;
    CHECK(dv__link_serve(&s, a[1], token) < 0);
    CHECK_EQ_INT(errno, EBADMSG);
    dv__link_free(&s);
    close(a[1]);
    pthread_join(th, NULL);
    CHECK(cl.rc < 0);
    dv__link_free(&cl.l);
    close(a[0]);

    /* A server that cannot prove the token: the client refuses it. */
    pair(a);
    cl = (struct client){.fd = a[0], .token = token};
    uint8_t hello[DV_LINK_HELLO], answer[DV_LINK_ANSWER], proof[32] = {0};
    dv__link_hello(&s, a[1], hello);
    CHECK(write(a[1], hello, sizeof(hello)) == sizeof(hello));
    pthread_create(&th, NULL, client_thread, &cl);
    CHECK(dv__data_read(a[1], answer, sizeof(answer)) == 0);
    CHECK(write(a[1], proof, sizeof(proof)) == sizeof(proof));
    pthread_join(th, NULL);
    CHECK(cl.rc < 0);
    CHECK_EQ_INT(cl.err, EBADMSG);
    dv__link_free(&s);
    dv__link_free(&cl.l);
    close(a[0]);
    close(a[1]);

    /* Not a data port at all, and one that refuses in its hello. */
    pair(a);
    cl = (struct client){.fd = a[0], .token = token};
    memset(hello, 'x', sizeof(hello));
    CHECK(write(a[1], hello, sizeof(hello)) == sizeof(hello));
    client_thread(&cl);
    CHECK(cl.rc < 0 && cl.err == EPROTO);
    dv__link_refusal(hello, EMFILE, "too many open files");
    CHECK(write(a[1], hello, sizeof(hello)) == sizeof(hello));
    client_thread(&cl);
    CHECK(cl.rc < 0 && cl.err == EMFILE);
    CHECK(strstr(cl.why.text, "too many open files") != NULL);
    dv__link_free(&cl.l);
    close(a[0]);
    close(a[1]);
}

/* ---- the wire, byte for byte ---- */

/* Known answers, computed apart from drover with another library
 * (HMAC-SHA256; the original ChaCha20, 64-bit nonce; Poly1305): the
 * handshake's proofs and keys for the nonces 0..31 (server) and
 * 0x80..0x9f (client), and the tags of a frame the server sends at a
 * sequence number whose bytes all differ. A change of crypto code must
 * not change one byte on the wire. */
static const uint8_t kat_client_proof[32] = {
    0x45, 0x3d, 0xe6, 0x18, 0xe5, 0x2e, 0x28, 0x5a, 0xfb, 0xbe, 0x5d,
    0x17, 0xc6, 0x0e, 0x68, 0x64, 0xe9, 0x2f, 0xe7, 0xfe, 0x6a, 0x47,
    0x64, 0x42, 0xbb, 0xed, 0x80, 0x6a, 0x56, 0xa2, 0x34, 0x40};
static const uint8_t kat_server_proof[32] = {
    0x58, 0x8a, 0x2d, 0x83, 0x59, 0x37, 0x7a, 0xb2, 0xba, 0x59, 0xd9,
    0x47, 0x73, 0x0f, 0xb3, 0x83, 0xac, 0x6a, 0xbd, 0x60, 0xc7, 0x77,
    0xa2, 0x47, 0x10, 0x89, 0x6f, 0xf9, 0x30, 0xb4, 0xe4, 0x54};
static const uint8_t kat_s2c[32] = {
    0x54, 0x85, 0xd9, 0x8a, 0xe6, 0xa2, 0x42, 0xf1, 0xb7, 0xda, 0xe9,
    0xe8, 0xcb, 0x25, 0x8d, 0x3a, 0x4c, 0x1b, 0x2e, 0x78, 0x87, 0x28,
    0x26, 0x86, 0xe3, 0x4b, 0xe2, 0xf2, 0x19, 0x08, 0xaa, 0x56};
static const uint8_t kat_c2s[32] = {
    0x05, 0x61, 0x80, 0xa1, 0x37, 0xe0, 0xa4, 0xb4, 0x27, 0xfc, 0x13,
    0x8e, 0xca, 0x24, 0x41, 0xa6, 0xcb, 0xa9, 0x8d, 0x52, 0xf0, 0x8f,
    0x9a, 0x0a, 0x2b, 0x30, 0xd0, 0x9b, 0x52, 0x0b, 0xc8, 0x58};
static const uint8_t kat_htag[DV_LINK_TAG] = {
    0x32, 0x1d, 0x05, 0x3a, 0x3b, 0x63, 0x9b, 0x6c,
    0x04, 0x88, 0x64, 0xfd, 0xd1, 0xbf, 0xf2, 0xba};
static const uint8_t kat_btag[DV_LINK_TAG] = {
    0x49, 0x28, 0x43, 0x53, 0x31, 0xeb, 0x56, 0x29,
    0x01, 0xc5, 0x46, 0x1e, 0x28, 0x76, 0x5d, 0xe0};

static void test_vectors(void)
{
    int sv[2];
    pair(sv);
    dv__link_t s;
    uint8_t hello[DV_LINK_HELLO], answer[DV_LINK_ANSWER], proof[DV_LINK_PROOF];
    CHECK(dv__link_hello(&s, sv[0], hello) == 0);
    for (int i = 0; i < DV_LINK_NONCE; i++) {
        s.ns[i] = (uint8_t)i; /* as if the server had drawn these */
        answer[i] = (uint8_t)(0x80 + i);
    }
    memcpy(answer + DV_LINK_NONCE, kat_client_proof, 32);
    CHECK(dv__link_accept(&s, token, answer, proof) == 0);
    CHECK(!memcmp(proof, kat_server_proof, sizeof(proof)));
    CHECK(!memcmp(s.tx_key, kat_s2c, DV_LINK_KEY));
    CHECK(!memcmp(s.rx_key, kat_c2s, DV_LINK_KEY));

    const char h[] = "a header", b[] = "and its body, of some bytes";
    struct iovec v[2] = {{(void *)h, sizeof(h) - 1},
                         {(void *)b, sizeof(b) - 1}};
    uint8_t raw[sizeof(h) - 1 + sizeof(b) - 1 + 2 * DV_LINK_TAG];
    s.tx_seq = 0x0102030405060708u;
    CHECK(dv__link_send(&s, v, 2, NULL, NULL) == 0);
    CHECK(dv__data_read(sv[1], raw, sizeof(raw)) == 0);
    CHECK(!memcmp(raw + sizeof(h) - 1, kat_htag, DV_LINK_TAG));
    CHECK(!memcmp(raw + sizeof(raw) - DV_LINK_TAG, kat_btag, DV_LINK_TAG));

    /* A client proof off by one bit is refused. */
    answer[DV_LINK_NONCE + 31] ^= 1;
    dv__link_free(&s);
    CHECK(dv__link_hello(&s, sv[0], hello) == 0);
    for (int i = 0; i < DV_LINK_NONCE; i++)
        s.ns[i] = (uint8_t)i;
    CHECK(dv__link_accept(&s, token, answer, proof) < 0);
    CHECK_EQ_INT(errno, EBADMSG);
    dv__link_free(&s);
    close(sv[0]);
    close(sv[1]);
}

/* ---- the server ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char logged[4096];

static void log_line(void *arg, const char *line)
{
    (void)arg;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof(logged) - n, "%s\n", line);
    pthread_mutex_unlock(&log_mu);
}

static int log_has(const char *what)
{
    pthread_mutex_lock(&log_mu);
    int yes = strstr(logged, what) != NULL;
    logged[0] = 0;
    pthread_mutex_unlock(&log_mu);
    return yes;
}

struct served {
    mn_data_t *d;
    int fd;
};

static void *serve_thread(void *arg)
{
    struct served *s = arg;
    mn_data_serve_conn(s->d, s->fd);
    shutdown(s->fd, SHUT_RDWR); /* the peer sees the end */
    return NULL;
}

/* One answer frame: 0 with its header in *p, or -1. */
static int read_answer(dv__link_t *l, struct dv__data_rep *p)
{
    char text[DV_DATA_TEXT_MAX];
    if (dv__link_read_head(l, p, sizeof(*p)) < 0 || p->magic != DV_DATA_MAGIC ||
        p->textlen > sizeof(text) || p->len ||
        dv__link_read(l, text, p->textlen) < 0)
        return -1;
    return dv__link_read_end(l);
}

/* A connection to a server thread; mode 0: an honest request, 1: a bit
 * flipped in it, 2: it replayed after its answer, 3: the wrong token.
 * Returns how many answers came to requests (the greeting aside). */
static int server_case(mn_data_t *d, int mode)
{
    int a[2], s2[2];
    pair(a);
    pair(s2);
    struct served sv = {d, a[1]};
    pthread_t th;
    pthread_create(&th, NULL, serve_thread, &sv);
    dv__link_t l;
    struct dv__data_rep p;
    int answers = -1;
    if (dv__link_connect(&l, a[0], mode == 3 ? other : token, NULL) < 0 ||
        read_answer(&l, &p) < 0 || p.relay != 0 || p.rc != 0)
        goto out;
    answers = 0;
    struct dv__data_req q = {DV_DATA_MAGIC, DV_ROP_QUEUE_SIZE, 7, 0, 0, 0, {0}};
    /* The frame's raw bytes, through a second pair. */
    uint8_t raw[512];
    size_t n = sizeof(q) + 2 * DV_LINK_TAG;
    l.fd = s2[0];
    if (dv__data_send_request(&l, &q, NULL, NULL, NULL) < 0 ||
        dv__data_read(s2[1], raw, n) < 0)
        goto out;
    l.fd = a[0];
    if (mode == 1)
        raw[20] ^= 4; /* a bit of its timeout */
    for (int k = 0; k < (mode == 2 ? 2 : 1); k++) {
        if (write(a[0], raw, n) != (ssize_t)n || read_answer(&l, &p) < 0)
            break;
        answers += p.relay == 7;
    }
out:
    dv__link_free(&l);
    shutdown(a[0], SHUT_WR);
    pthread_join(th, NULL);
    close(a[0]);
    close(a[1]);
    close(s2[0]);
    close(s2[1]);
    return answers;
}

static void test_server(void)
{
    mn_data_t *d = mn_data_new(token, log_line, NULL, NULL);
    CHECK(d != NULL);
    CHECK_EQ_INT(server_case(d, 0), 1); /* answered (no such queue) */
    CHECK_EQ_INT(mn_data_refused(d), 0);
    CHECK_EQ_INT(server_case(d, 1), 0);
    CHECK(log_has("a frame failed its check"));
    CHECK_EQ_INT(server_case(d, 2), 1); /* the first, not the replay */
    CHECK(log_has("a frame failed its check"));
    CHECK(server_case(d, 3) < 0);
    CHECK(log_has("wrong token"));
    CHECK_EQ_INT(mn_data_refused(d), 3);
    mn_data_stop(&d);
}

int main(void)
{
    test_handshake();
    test_vectors();
    test_frames();
    test_big(0);
    test_big(1);
    test_server();
    return CHECK_DONE();
}
