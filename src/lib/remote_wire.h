/* Internal (owner: multi-node runtime): the frames of the data plane, a
 * plain TCP connection from a process to the agent of the node where a
 * queue or event lives (remote.c and remote_mux.c are the client,
 * src/multinode/mn_data.c the server). A process keeps one connection per home
 * node, shared by all its relays: each request names its relay, and the
 * answer to it names the same relay (answers of different relays may come
 * in any order, those of one relay come in order). The connection starts
 * with data_link.h's handshake, which proves on both sides that the peer
 * holds the job's data token (32 bytes, from the rundir's "token" file,
 * handed out over the CURVE control plane) without sending it; every
 * request and answer is then a frame of that link (this header, then its
 * bytes, each part with its tag). The first answer is a greeting: an
 * answer of relay 0, rc 0 when the server takes the connection, -1 with
 * the reason when it cannot (too many connections, no thread left). A
 * port that has no file left to take a connection with says so in its
 * hello instead (data_link.h). Native byte order: every node runs the
 * same drover build. */
#ifndef DROVER_LIB_REMOTE_WIRE_H
#define DROVER_LIB_REMOTE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define DV_DATA_MAGIC 0x44564451u /* "QDVD" */
#define DV_DATA_TOKEN 32
#define DV_DATA_TEXT_MAX 4096 /* reason text of an answer */

struct dv__data_req {
    uint32_t magic;
    uint32_t op;    /* DV_ROP_* */
    uint32_t relay; /* the relay's id on this connection, not 0 */
    uint32_t pad;
    double timeout_s;
    uint64_t len; /* bytes that follow */
    uint8_t handle[64];
};

struct dv__data_rep {
    uint32_t magic;
    int32_t rc;  /* 0 or -1 */
    int32_t err; /* errno when rc is -1 */
    int32_t value;
    uint32_t textlen; /* reason text that follows (rc -1) */
    uint32_t relay;   /* the request's; 0: the greeting */
    uint64_t len;     /* result bytes that follow the text */
};

/* remote_io.c: the plain bytes under the link's frames. Read exactly n
 * bytes; 0, or -1 on error or end of stream (errno ECONNRESET). */
int dv__data_read(int fd, void *p, size_t n);

/* Send every byte of iov[0..n) (the iovecs are consumed); 0 or -1. Where
 * wait is not NULL the socket is used without blocking, and wait(ctx) is
 * called whenever it is full (to read what the peer sends meanwhile); a
 * wait that fails ends the send. */
struct iovec;
int dv__data_send(int fd, struct iovec *iov, int n, int (*wait)(void *ctx),
                  void *ctx);

/* A request and its payload as one frame of link l (wait as for
 * dv__data_send). */
struct dv__link;
int dv__data_send_request(struct dv__link *l, struct dv__data_req *q,
                          const void *in, int (*wait)(void *ctx), void *ctx);

/* An answer: rc 0 with len result bytes, or rc -1 with err and the reason
 * text why (no result), as one frame of link l. Blocks until sent. */
int dv__data_send_answer(struct dv__link *l, uint32_t relay, int rc, int err,
                         int32_t value, const char *why, const void *data,
                         size_t len);

#endif
