/* Internal (owner: multi-node runtime): the authenticated link under the
 * data plane's frames (remote_wire.h). A connection starts with a
 * challenge and response that proves on both sides that the peer holds
 * the job's data token, which never travels: the server sends a random
 * nonce, the client its own nonce and HMAC-SHA256(token, "client" ||
 * nonces), the server HMAC-SHA256(token, "server" || nonces). Both derive
 * a key per direction from the token and both nonces, so nothing recorded
 * from one connection is worth anything on another.
 *
 * Each frame is a header and a body (either may be a few parts):
 *   header | tag(header) | body | tag(body)
 * Both tags are Poly1305 under one-time keys drawn from ChaCha20 (the
 * direction's key, the frame's sequence number as nonce), as in the
 * ChaCha20-Poly1305 construction, so a frame that is forged, changed,
 * replayed, dropped or reordered does not verify. The header's tag lets
 * the reader trust a length before it reads the body; the body's MAC is
 * computed piece by piece while the bytes are hot (never a second pass
 * over a large message). Data is authenticated, not encrypted.
 *
 * All of it is OpenSSL's libcrypto (HMAC, ChaCha20 and Poly1305 through
 * EVP, its random bytes and constant-time compare): one crypto library,
 * whose vector Poly1305 is also the fastest at hand (the MAC of an 8 MiB
 * message is most of what this link costs).
 *
 * A link is used by one thread at a time. Every function returns 0, or -1
 * with errno (EBADMSG: a tag or proof did not verify; EPROTO: not a
 * drover data port; others from the socket); after -1 the connection is
 * no good: close it. */
#ifndef DROVER_LIB_DATA_LINK_H
#define DROVER_LIB_DATA_LINK_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

#define DV_LINK_TOKEN 32
#define DV_LINK_NONCE 32
#define DV_LINK_KEY 32
#define DV_LINK_TAG 16
/* Server -> client: magic, version, server nonce; or, from a port that
 * cannot take the connection, a refusal: another magic, an errno and a
 * short reason (nothing is proved by it: anyone on the path could send
 * one, as anyone could reset the connection). */
#define DV_LINK_HELLO 40
/* Client -> server: client nonce, client proof. */
#define DV_LINK_ANSWER (DV_LINK_NONCE + 32)
/* Server -> client: server proof. */
#define DV_LINK_PROOF 32
/* The most parts a frame may have (header included). */
#define DV_LINK_MAX_PARTS 8

/* A link: its keys and counters, and the ChaCha20 and Poly1305 contexts of
 * each direction (made by the handshake, owned by the link: dv__link_free;
 * kept so that a frame allocates nothing). The sending half
 * (tx_*) and the reading half (rx_*) may be used by two threads at once. */
typedef struct dv__link {
    int fd;
    uint8_t tx_key[DV_LINK_KEY], rx_key[DV_LINK_KEY];
    uint64_t tx_seq, rx_seq;
    EVP_CIPHER_CTX *tx_stream, *rx_stream; /* the frames' one-time keys */
    EVP_MAC_CTX *tx_mac, *rx_mac;          /* Poly1305 of header and body */
    int rx_open;                           /* a header was read, its body not */
    uint8_t ns[DV_LINK_NONCE]; /* the server's nonce, during the handshake */
} dv__link_t;

struct iovec;

/* Client: run the handshake on a connected blocking socket into l (its
 * former content is not looked at); free l afterwards, also on failure.
 * The caller keeps owning fd. EPROTO: not a data port; EBADMSG: it
 * does not hold the token; the refusal's errno when it refused. */
int dv__link_connect(dv__link_t *l, int fd, const uint8_t *token,
                     dv_error_t *err);

/* Server, one step at a time (for a poll loop that holds many peers):
 * start a link on fd and write the hello to send; then, given the
 * client's answer, check it (EBADMSG: not the token) and write the proof
 * to send back. The link is ready once the proof is sent. */
int dv__link_hello(dv__link_t *l, int fd, uint8_t hello[DV_LINK_HELLO]);
int dv__link_accept(dv__link_t *l, const uint8_t *token,
                    const uint8_t answer[DV_LINK_ANSWER],
                    uint8_t proof[DV_LINK_PROOF]);
/* Server: the whole handshake on a blocking socket. */
int dv__link_serve(dv__link_t *l, int fd, const uint8_t *token);
/* Server: a hello that refuses the connection with errno e and why (at
 * most 31 bytes of it are sent). */
void dv__link_refusal(uint8_t hello[DV_LINK_HELLO], int e, const char *why);

/* Send one frame: iov[0] is the header, iov[1..n) the body (n at most
 * DV_LINK_MAX_PARTS; the iovecs are not changed). Large bodies go out in
 * slices, each added to the MAC just before it is sent. wait and ctx as
 * for dv__data_send (remote_wire.h): NULL blocks. */
int dv__link_send(dv__link_t *l, const struct iovec *iov, int n,
                  int (*wait)(void *ctx), void *ctx);

/* Read a frame: its header (len bytes, verified before it returns), then
 * the body in as many reads as the caller likes, then the end, which
 * verifies the body. Nothing read is to be acted on before the end
 * returned 0. */
int dv__link_read_head(dv__link_t *l, void *head, size_t len);
int dv__link_read(dv__link_t *l, void *p, size_t n);
int dv__link_read_end(dv__link_t *l);

/* Move a link: *to gets what *from held, *from is left empty (but its
 * fd). */
void dv__link_move(dv__link_t *to, dv__link_t *from);

/* Free what the link holds and forget its keys; the fd stays (it is the
 * caller's). NULL-safe; an empty link is fine. */
void dv__link_free(dv__link_t *l);

#endif
