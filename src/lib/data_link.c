/* The data plane's authenticated link (data_link.h): the handshake that
 * proves the job's token on both sides without sending it, the keys of a
 * connection, and frames with Poly1305 tags and sequence numbers. Large
 * bodies are sent and read in slices that the MAC sees while they are in
 * the cache, so that a message is touched once more, not twice. */
#define _GNU_SOURCE
#include "lib/data_link.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>

#include "common/error.h"
#include "lib/remote_wire.h"

#define LINK_MAGIC 0x4c445644u   /* "DVDL" */
#define REFUSE_MAGIC 0x52445644u /* "DVDR" */
#define LINK_VERSION 1u
/* A slice of a body: small enough to stay in the cache between the MAC
 * and the copy into (or out of) the socket. */
#define SLICE ((size_t)256 << 10)

/* The algorithms, fetched once per process: a fetch looks the name up in
 * the providers' tables, which is not to be paid per frame. */
static EVP_MAC *hmac_alg, *poly1305_alg;
static EVP_CIPHER *chacha20_alg;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    poly1305_alg = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    chacha20_alg = EVP_CIPHER_fetch(NULL, "ChaCha20", NULL);
}

static int algs_ready(void)
{
    pthread_once(&algs_once, algs_fetch);
    if (!hmac_alg || !poly1305_alg || !chacha20_alg) {
        errno = ENOSYS;
        return -1;
    }
    return 0;
}

static int crypto_failed(void)
{
    errno = EIO;
    return -1;
}

/* HMAC-SHA256(token, label || ns || nc); the label's NUL ends it. Only
 * the handshake calls it, so a context of its own is cheap enough. */
static int prove(uint8_t out[32], const uint8_t *token, const char *label,
                 const uint8_t *ns, const uint8_t *nc)
{
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(
                               OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(hmac_alg);
    size_t n = 0;
    int ok =
        c && EVP_MAC_init(c, token, DV_LINK_TOKEN, params) == 1 &&
        EVP_MAC_update(c, (const uint8_t *)label, strlen(label) + 1) == 1 &&
        EVP_MAC_update(c, ns, DV_LINK_NONCE) == 1 &&
        EVP_MAC_update(c, nc, DV_LINK_NONCE) == 1 &&
        EVP_MAC_final(c, out, &n, 32) == 1 && n == 32;
    EVP_MAC_CTX_free(c); /* wipes the key it copied */
    if (ok)
        return 0;
    OPENSSL_cleanse(out, 32);
    return crypto_failed();
}

/* A ChaCha20 context keyed with one direction's key (the frame's nonce
 * comes later, frame_keys). */
static EVP_CIPHER_CTX *stream_new(const uint8_t key[DV_LINK_KEY])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c && EVP_EncryptInit_ex2(c, chacha20_alg, key, NULL, NULL) != 1) {
        EVP_CIPHER_CTX_free(c);
        c = NULL;
    }
    return c;
}

/* The keys of both directions, and the link's MAC and stream contexts,
 * made once so that a frame costs no allocation. */
static int derive(dv__link_t *l, const uint8_t *token, const uint8_t *nc,
                  int server)
{
    if (prove(server ? l->tx_key : l->rx_key, token, "drover data s2c", l->ns,
              nc) < 0 ||
        prove(server ? l->rx_key : l->tx_key, token, "drover data c2s", l->ns,
              nc) < 0) {
        dv__link_free(l);
        return -1;
    }
    l->tx_mac = EVP_MAC_CTX_new(poly1305_alg);
    l->rx_mac = EVP_MAC_CTX_new(poly1305_alg);
    l->tx_stream = stream_new(l->tx_key);
    l->rx_stream = stream_new(l->rx_key);
    if (!l->tx_mac || !l->rx_mac || !l->tx_stream || !l->rx_stream) {
        dv__link_free(l);
        errno = ENOMEM;
        return -1;
    }
    l->tx_seq = l->rx_seq = 0;
    l->rx_open = 0;
    return 0;
}

/* A fresh link on fd (empty: freeing it is fine whatever comes next). */
static int start(dv__link_t *l, int fd)
{
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    return algs_ready();
}

int dv__link_hello(dv__link_t *l, int fd, uint8_t hello[DV_LINK_HELLO])
{
    if (start(l, fd) < 0)
        return -1;
    if (RAND_bytes(l->ns, sizeof(l->ns)) != 1)
        return crypto_failed();
    uint32_t head[2] = {LINK_MAGIC, LINK_VERSION};
    memcpy(hello, head, sizeof(head));
    memcpy(hello + sizeof(head), l->ns, sizeof(l->ns));
    return 0;
}

int dv__link_accept(dv__link_t *l, const uint8_t *token,
                    const uint8_t answer[DV_LINK_ANSWER],
                    uint8_t proof[DV_LINK_PROOF])
{
    const uint8_t *nc = answer;
    uint8_t want[32];
    if (prove(want, token, "drover data client", l->ns, nc) < 0)
        return -1;
    int ok = CRYPTO_memcmp(want, answer + DV_LINK_NONCE, sizeof(want)) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    if (!ok) {
        errno = EBADMSG;
        return -1;
    }
    if (prove(proof, token, "drover data server", l->ns, nc) < 0)
        return -1;
    return derive(l, token, nc, 1);
}

int dv__link_serve(dv__link_t *l, int fd, const uint8_t *token)
{
    uint8_t hello[DV_LINK_HELLO], answer[DV_LINK_ANSWER], proof[DV_LINK_PROOF];
    if (dv__link_hello(l, fd, hello) < 0 ||
        dv__data_send(fd, &(struct iovec){hello, sizeof(hello)}, 1, NULL,
                      NULL) < 0 ||
        dv__data_read(fd, answer, sizeof(answer)) < 0 ||
        dv__link_accept(l, token, answer, proof) < 0)
        return -1;
    return dv__data_send(fd, &(struct iovec){proof, sizeof(proof)}, 1, NULL,
                         NULL);
}

void dv__link_refusal(uint8_t hello[DV_LINK_HELLO], int e, const char *why)
{
    uint32_t head[2] = {REFUSE_MAGIC, (uint32_t)e};
    memset(hello, 0, DV_LINK_HELLO);
    memcpy(hello, head, sizeof(head));
    memcpy(hello + sizeof(head), why,
           strnlen(why, DV_LINK_HELLO - sizeof(head) - 1));
}

/* A refusal hello: its errno and reason. */
static int refused(const uint8_t *hello, dv_error_t *err)
{
    uint32_t head[2];
    char why[DV_LINK_HELLO] = "";
    memcpy(head, hello, sizeof(head));
    memcpy(why, hello + sizeof(head), DV_LINK_HELLO - sizeof(head) - 1);
    int e = head[1] > 0 && head[1] < 4096 ? (int)head[1] : ECONNREFUSED;
    return dv__errprintf(err, e, "refused: %s", *why ? why : strerror(e));
}

int dv__link_connect(dv__link_t *l, int fd, const uint8_t *token,
                     dv_error_t *err)
{
    uint8_t hello[DV_LINK_HELLO], answer[DV_LINK_ANSWER], proof[DV_LINK_PROOF];
    uint8_t want[DV_LINK_PROOF];
    uint32_t head[2];
    if (start(l, fd) < 0)
        return dv__errprintf(err, errno, "no HMAC, ChaCha20 or Poly1305");
    if (dv__data_read(fd, hello, sizeof(hello)) < 0)
        return dv__errsys(err, "sent no hello");
    memcpy(head, hello, sizeof(head));
    if (head[0] == REFUSE_MAGIC)
        return refused(hello, err);
    if (head[0] != LINK_MAGIC || head[1] != LINK_VERSION)
        return dv__errprintf(err, EPROTO,
                             "is not a drover data port (or another version)");
    memcpy(l->ns, hello + sizeof(head), sizeof(l->ns));
    if (RAND_bytes(answer, DV_LINK_NONCE) != 1 ||
        prove(answer + DV_LINK_NONCE, token, "drover data client", l->ns,
              answer) < 0)
        return dv__errprintf(err, errno, "libcrypto failed");
    if (dv__data_send(fd, &(struct iovec){answer, sizeof(answer)}, 1, NULL,
                      NULL) < 0 ||
        dv__data_read(fd, proof, sizeof(proof)) < 0)
        return dv__errsys(err, "hung up in the handshake");
    if (prove(want, token, "drover data server", l->ns, answer) < 0)
        return dv__errprintf(err, errno, "libcrypto failed");
    int ok = CRYPTO_memcmp(want, proof, sizeof(want)) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    if (!ok)
        return dv__errprintf(err, EBADMSG, "does not hold the job's token");
    if (derive(l, token, answer, 0) < 0)
        return dv__errprintf(err, errno, "cannot set up its keys");
    return 0;
}

/* The frame's one-time keys, header's then body's: the first 64 bytes of
 * ChaCha20 under the direction's key, with the sequence number as nonce.
 * OpenSSL's IV is the block counter's 32-bit word then 12 bytes of nonce;
 * a zero counter widened to 64 bits and the 64-bit sequence number fill
 * the same four words as the original ChaCha20's 64-bit counter and
 * nonce, so the keys are those of that construction. */
static int frame_keys(EVP_CIPHER_CTX *stream, uint64_t seq, uint8_t k[64])
{
    static const uint8_t zero[64];
    uint8_t iv[16] = {0};
    for (size_t i = 0; i < 8; i++)
        iv[8 + i] = (uint8_t)(seq >> (8 * i));
    int n = 0;
    if (EVP_EncryptInit_ex2(stream, NULL, NULL, iv, NULL) != 1 ||
        EVP_EncryptUpdate(stream, k, &n, zero, 64) != 1 || n != 64) {
        OPENSSL_cleanse(k, 64);
        return crypto_failed();
    }
    return 0;
}

/* Poly1305 of one piece under a one-time key. */
static int tag_of(EVP_MAC_CTX *mac, const uint8_t *key, const void *p, size_t n,
                  uint8_t tag[DV_LINK_TAG])
{
    size_t tl = 0;
    if (EVP_MAC_init(mac, key, 32, NULL) != 1 ||
        EVP_MAC_update(mac, p, n) != 1 ||
        EVP_MAC_final(mac, tag, &tl, DV_LINK_TAG) != 1 || tl != DV_LINK_TAG)
        return crypto_failed();
    return 0;
}

struct out {
    dv__link_t *l;
    struct iovec v[DV_LINK_MAX_PARTS + 3];
    int n;
    size_t bytes;
    int (*wait)(void *ctx);
    void *ctx;
};

static int flush(struct out *o)
{
    int rc = o->n ? dv__data_send(o->l->fd, o->v, o->n, o->wait, o->ctx) : 0;
    o->n = 0;
    o->bytes = 0;
    return rc;
}

int dv__link_send(dv__link_t *l, const struct iovec *iov, int n,
                  int (*wait)(void *ctx), void *ctx)
{
    if (n < 1 || n > DV_LINK_MAX_PARTS) {
        errno = EINVAL;
        return -1;
    }
    uint8_t k[64], htag[DV_LINK_TAG], btag[DV_LINK_TAG];
    EVP_MAC_CTX *mac = l->tx_mac;
    if (frame_keys(l->tx_stream, l->tx_seq++, k) < 0)
        return -1;
    int ok = tag_of(mac, k, iov[0].iov_base, iov[0].iov_len, htag) == 0 &&
             EVP_MAC_init(mac, k + 32, 32, NULL) == 1;
    OPENSSL_cleanse(k, sizeof(k));
    struct out o = {.l = l, .wait = wait, .ctx = ctx};
    o.v[o.n++] = iov[0];
    o.v[o.n++] = (struct iovec){htag, sizeof(htag)};
    for (int i = 1; i < n; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left) {
            size_t take = left < SLICE - o.bytes ? left : SLICE - o.bytes;
            ok = ok && EVP_MAC_update(mac, (const uint8_t *)p, take) == 1;
            o.v[o.n++] = (struct iovec){(void *)p, take};
            o.bytes += take;
            p += take;
            left -= take;
            if (o.bytes == SLICE && (!ok || flush(&o) < 0))
                return ok ? -1 : crypto_failed();
        }
    }
    size_t tl = 0;
    if (!ok || EVP_MAC_final(mac, btag, &tl, sizeof(btag)) != 1 ||
        tl != sizeof(btag))
        return crypto_failed();
    o.v[o.n++] = (struct iovec){btag, sizeof(btag)};
    return flush(&o);
}

static int bad_frame(dv__link_t *l)
{
    l->rx_open = 0;
    errno = EBADMSG;
    return -1;
}

int dv__link_read_head(dv__link_t *l, void *head, size_t len)
{
    uint8_t k[64], tag[DV_LINK_TAG], want[DV_LINK_TAG];
    if (l->rx_open)
        return bad_frame(l); /* the caller skipped the end */
    if (dv__data_read(l->fd, head, len) < 0 ||
        dv__data_read(l->fd, tag, sizeof(tag)) < 0)
        return -1;
    if (frame_keys(l->rx_stream, l->rx_seq++, k) < 0)
        return -1;
    int ok = tag_of(l->rx_mac, k, head, len, want) == 0 &&
             EVP_MAC_init(l->rx_mac, k + 32, 32, NULL) == 1;
    OPENSSL_cleanse(k, sizeof(k));
    if (!ok)
        return crypto_failed();
    if (CRYPTO_memcmp(want, tag, sizeof(tag)) != 0)
        return bad_frame(l);
    l->rx_open = 1;
    return 0;
}

int dv__link_read(dv__link_t *l, void *p, size_t n)
{
    if (!l->rx_open)
        return bad_frame(l);
    uint8_t *c = p;
    while (n) {
        size_t take = n < SLICE ? n : SLICE;
        if (dv__data_read(l->fd, c, take) < 0)
            return -1;
        if (EVP_MAC_update(l->rx_mac, c, take) != 1)
            return crypto_failed();
        c += take;
        n -= take;
    }
    return 0;
}

int dv__link_read_end(dv__link_t *l)
{
    uint8_t tag[DV_LINK_TAG], want[DV_LINK_TAG];
    if (!l->rx_open)
        return bad_frame(l);
    if (dv__data_read(l->fd, tag, sizeof(tag)) < 0)
        return -1;
    size_t tl = 0;
    l->rx_open = 0;
    if (EVP_MAC_final(l->rx_mac, want, &tl, sizeof(want)) != 1 ||
        tl != sizeof(want))
        return crypto_failed();
    if (CRYPTO_memcmp(want, tag, sizeof(tag)) != 0)
        return bad_frame(l);
    return 0;
}

void dv__link_move(dv__link_t *to, dv__link_t *from)
{
    *to = *from;
    int fd = from->fd;
    OPENSSL_cleanse(from, sizeof(*from));
    from->fd = fd;
}

void dv__link_free(dv__link_t *l)
{
    if (!l)
        return;
    EVP_MAC_CTX_free(l->tx_mac);
    EVP_MAC_CTX_free(l->rx_mac);
    EVP_CIPHER_CTX_free(l->tx_stream); /* wipes the keys they hold */
    EVP_CIPHER_CTX_free(l->rx_stream);
    int fd = l->fd;
    OPENSSL_cleanse(l, sizeof(*l));
    l->fd = fd;
}
