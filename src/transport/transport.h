/* The control-plane transport: ZeroMQ over TCP with CURVE authentication
 * and encryption. Listening sockets (head, agents) are ROUTERs that accept
 * only peers holding the job's client key; connecting sockets are DEALERs.
 * Messages are single frames in the wire.h format (plus the routing id on
 * a ROUTER).
 *
 * A transport owns one ZeroMQ context and one thread: the ZAP handler that
 * decides on each CURVE client key and watches the listening sockets for
 * failed handshakes. Each refusal is counted and passed to the log
 * callback (the library itself never prints). Sockets are returned as
 * plain ZeroMQ sockets so that a reactor can poll them (ZMQ_FD). */
#ifndef DROVER_TRANSPORT_TRANSPORT_H
#define DROVER_TRANSPORT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "drover/error.h"
#include "transport/keys.h"
#include "transport/wire.h"

typedef struct dv_transport dv_transport_t;

/* Called from the transport's thread with one line of text (no newline)
 * for each refused connection: keep it short and thread-safe. */
typedef void (*dv_transport_log_f)(void *arg, const char *line);

/* A received message. The view's fields point into body: valid until
 * dv__transport_msg_close(). */
typedef struct dv_transport_msg {
    uint8_t peer[256]; /* routing id of the sender (ROUTER sockets) */
    size_t peer_len;
    zmq_msg_t body;
    int open;
    dv_wire_view_t view;
} dv_transport_msg_t;

/* Make a transport for a job's keys (copied). log may be NULL. Returns
 * NULL on failure (errno, err). Destroy with dv__transport_destroy(). */
dv_transport_t *dv__transport_create(const dv_job_keys_t *keys,
                                     dv_transport_log_f log, void *log_arg,
                                     dv_error_t *err);

/* Close every socket the transport made, stop its thread, free it, and
 * set *tp to NULL. NULL-safe; keeps errno. */
void dv__transport_destroy(dv_transport_t **tp);

/* A ROUTER bound to endpoint ("tcp://ADDR:PORT", port * for any); the
 * address it got is written to bound (may be NULL). The socket belongs to
 * the transport: close it with dv__transport_close(). NULL on failure. */
void *dv__transport_listen(dv_transport_t *tp, const char *endpoint,
                           char *bound, size_t bound_len, dv_error_t *err);

/* A DEALER connecting to endpoint with the job's client key. Connection is
 * asynchronous: messages queue until the handshake succeeds. Belongs to
 * the transport. NULL on failure. */
void *dv__transport_connect(dv_transport_t *tp, const char *endpoint,
                            dv_error_t *err);

/* Close a socket made by this transport and set *sock to NULL. */
void dv__transport_close(dv_transport_t *tp, void **sock);

/* The underlying ZeroMQ context (for inproc sockets of the same loop). */
void *dv__transport_context(dv_transport_t *tp);

/* Connections refused so far (unknown key, failed handshake). */
uint64_t dv__transport_refused(dv_transport_t *tp);

/* Send a finished message (dv__wire_end() done). The buffer is handed to
 * ZeroMQ without a copy and b is left empty, also on failure. peer is the
 * routing id on a ROUTER, NULL on a DEALER. Returns 0, or -1 (EAGAIN when
 * the peer is unknown or its queue is full, other errno from ZeroMQ). */
int dv__transport_send(void *sock, const uint8_t *peer, size_t peer_len,
                       dv_wire_buf_t *b, dv_error_t *err);

/* Receive one message, waiting up to timeout_ms (-1: forever, 0: not at
 * all). Returns 0 with m open (close it), or -1: EAGAIN (nothing came),
 * EPROTO (a message that does not decode was read and dropped; reason in
 * err), EINTR, other errno from ZeroMQ. m is closed on failure. */
int dv__transport_recv(void *sock, dv_transport_msg_t *m, int timeout_ms,
                       dv_error_t *err);

/* Release a received message. NULL-safe; idempotent. */
void dv__transport_msg_close(dv_transport_msg_t *m);

#endif
