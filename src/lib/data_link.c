/* The data plane's authenticated link (data_link.h): the handshake that
 * proves the job's token on both sides without sending it, the keys of a
 * connection, and frames with Poly1305 tags and sequence numbers. Large
 * bodies are sent and read in slices that the MAC sees while they are in
 * the cache, so that a message is touched once more, not twice. */
#define _GNU_SOURCE
#include "lib/data_link.h"

#include <errno.h>
#include <openssl/evp.h>
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

/* HMAC-SHA256(token, label || ns || nc); the label's NUL ends it. */
static void prove(uint8_t out[32], const uint8_t *token, const char *label,
                  const uint8_t *ns, const uint8_t *nc)
{
    crypto_auth_hmacsha256_state s;
    crypto_auth_hmacsha256_init(&s, token, DV_LINK_TOKEN);
    crypto_auth_hmacsha256_update(&s, (const uint8_t *)label,
                                  strlen(label) + 1);
    crypto_auth_hmacsha256_update(&s, ns, DV_LINK_NONCE);
    crypto_auth_hmacsha256_update(&s, nc, DV_LINK_NONCE);
    crypto_auth_hmacsha256_final(&s, out);
    sodium_memzero(&s, sizeof(s));
}

static EVP_MAC *poly1305;
static pthread_once_t poly1305_once = PTHREAD_ONCE_INIT;

static void poly1305_fetch(void)
{
    poly1305 = EVP_MAC_fetch(NULL, "POLY1305", NULL);
}

/* The keys of both directions, and the body MACs' states. */
static int derive(dv__link_t *l, const uint8_t *token, const uint8_t *nc,
                  int server)
{
    pthread_once(&poly1305_once, poly1305_fetch);
    l->tx_mac = poly1305 ? EVP_MAC_CTX_new(poly1305) : NULL;
    l->rx_mac = poly1305 ? EVP_MAC_CTX_new(poly1305) : NULL;
    if (!l->tx_mac || !l->rx_mac) {
        dv__link_free(l);
        errno = ENOMEM;
        return -1;
    }
    prove(server ? l->tx_key : l->rx_key, token, "drover data s2c", l->ns, nc);
    prove(server ? l->rx_key : l->tx_key, token, "drover data c2s", l->ns, nc);
    l->tx_seq = l->rx_seq = 0;
    l->rx_open = 0;
    return 0;
}

/* A fresh link on fd (empty: freeing it is fine whatever comes next). */
static int start(dv__link_t *l, int fd)
{
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    if (sodium_init() < 0) {
        errno = ENOSYS;
        return -1;
    }
    return 0;
}

int dv__link_hello(dv__link_t *l, int fd, uint8_t hello[DV_LINK_HELLO])
{
    if (start(l, fd) < 0)
        return -1;
    randombytes_buf(l->ns, sizeof(l->ns));
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
    prove(want, token, "drover data client", l->ns, nc);
    int ok = crypto_verify_32(want, answer + DV_LINK_NONCE) == 0;
    sodium_memzero(want, sizeof(want));
    if (!ok) {
        errno = EBADMSG;
        return -1;
    }
    prove(proof, token, "drover data server", l->ns, nc);
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
        return dv__errprintf(err, errno, "libsodium: cannot start");
    if (dv__data_read(fd, hello, sizeof(hello)) < 0)
        return dv__errsys(err, "sent no hello");
    memcpy(head, hello, sizeof(head));
    if (head[0] == REFUSE_MAGIC)
        return refused(hello, err);
    if (head[0] != LINK_MAGIC || head[1] != LINK_VERSION)
        return dv__errprintf(err, EPROTO,
                             "is not a drover data port (or another version)");
    memcpy(l->ns, hello + sizeof(head), sizeof(l->ns));
    randombytes_buf(answer, DV_LINK_NONCE);
    prove(answer + DV_LINK_NONCE, token, "drover data client", l->ns, answer);
    if (dv__data_send(fd, &(struct iovec){answer, sizeof(answer)}, 1, NULL,
                      NULL) < 0 ||
        dv__data_read(fd, proof, sizeof(proof)) < 0)
        return dv__errsys(err, "hung up in the handshake");
    prove(want, token, "drover data server", l->ns, answer);
    int ok = crypto_verify_32(want, proof) == 0;
    sodium_memzero(want, sizeof(want));
    if (!ok)
        return dv__errprintf(err, EBADMSG, "does not hold the job's token");
    if (derive(l, token, answer, 0) < 0)
        return dv__errprintf(err, ENOMEM, "out of memory");
    return 0;
}

/* The frame's one-time keys: header's, then body's. */
static void frame_keys(const uint8_t *key, uint64_t seq, uint8_t k[64])
{
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
    for (size_t i = 0; i < sizeof(nonce); i++)
        nonce[i] = (uint8_t)(seq >> (8 * i));
    crypto_stream_chacha20(k, 64, nonce, key);
}

struct out {
    dv__link_t *l;
    struct iovec v[DV_LINK_MAX_PARTS + 3];
    int n;
    size_t bytes;
    int (*wait)(void *ctx);
    void *ctx;
};

static int mac_failed(void)
{
    errno = EIO;
    return -1;
}

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
    frame_keys(l->tx_key, l->tx_seq++, k);
    crypto_onetimeauth(htag, iov[0].iov_base, iov[0].iov_len, k);
    EVP_MAC_CTX *mac = l->tx_mac;
    int ok = EVP_MAC_init(mac, k + 32, 32, NULL) == 1;
    sodium_memzero(k, sizeof(k));
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
                return ok ? -1 : mac_failed();
        }
    }
    size_t tl = 0;
    if (!ok || EVP_MAC_final(mac, btag, &tl, sizeof(btag)) != 1 ||
        tl != sizeof(btag))
        return mac_failed();
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
    uint8_t k[64], tag[DV_LINK_TAG];
    if (l->rx_open)
        return bad_frame(l); /* the caller skipped the end */
    if (dv__data_read(l->fd, head, len) < 0 ||
        dv__data_read(l->fd, tag, sizeof(tag)) < 0)
        return -1;
    frame_keys(l->rx_key, l->rx_seq++, k);
    if (crypto_onetimeauth_verify(tag, head, len, k) != 0)
        return bad_frame(l);
    int ok = EVP_MAC_init(l->rx_mac, k + 32, 32, NULL) == 1;
    sodium_memzero(k, sizeof(k));
    if (!ok)
        return mac_failed();
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
            return mac_failed();
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
        return mac_failed();
    if (crypto_verify_16(want, tag) != 0)
        return bad_frame(l);
    return 0;
}

void dv__link_move(dv__link_t *to, dv__link_t *from)
{
    *to = *from;
    int fd = from->fd;
    sodium_memzero(from, sizeof(*from));
    from->fd = fd;
}

void dv__link_free(dv__link_t *l)
{
    if (!l)
        return;
    EVP_MAC_CTX_free(l->tx_mac);
    EVP_MAC_CTX_free(l->rx_mac);
    int fd = l->fd;
    sodium_memzero(l, sizeof(*l));
    l->fd = fd;
}
