/* The control-plane message codec: one message is a fixed header followed
 * by a list of tagged fields, all little endian.
 *
 *   offset size  header field
 *   0      4     magic "DVW1" read as u32 (DV_WIRE_MAGIC)
 *   4      2     version (DV_WIRE_VERSION)
 *   6      2     type (a dv_wire_type_t, never 0)
 *   8      8     id: request id, echoed by the reply
 *   16     2     number of fields (at most DV_WIRE_MAX_FIELDS)
 *   18     2     reserved, 0
 *   20     4     body length: bytes after the header
 *   24     ...   fields: tag u16, length u32, bytes
 *
 * The decoder takes bytes from the network: it never reads outside the
 * buffer it is given, accepts no message whose lengths disagree, and keeps
 * pointers into that buffer (no copy). */
#ifndef DROVER_TRANSPORT_WIRE_H
#define DROVER_TRANSPORT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

#define DV_WIRE_MAGIC 0x31575644u /* "DVW1" */
#define DV_WIRE_VERSION 1
#define DV_WIRE_HEADER_SIZE 24
#define DV_WIRE_FIELD_HEADER_SIZE 6
#define DV_WIRE_MAX_FIELDS 32
#define DV_WIRE_MAX_BODY (1024u * 1024u * 1024u)

/* Message types of the control plane. Values are part of the protocol:
 * append, never renumber. */
typedef enum {
    DV_WIRE_HELLO = 1,       /* agent -> head: who I am */
    DV_WIRE_WELCOME = 2,     /* head -> agent: your index, the node table */
    DV_WIRE_HEARTBEAT = 3,   /* either way */
    DV_WIRE_SPAWN = 4,       /* start a process */
    DV_WIRE_EXITED = 5,      /* a process ended */
    DV_WIRE_OUTPUT = 6,      /* stdout/stderr bytes of a process */
    DV_WIRE_KILL = 7,        /* signal processes / tear down */
    DV_WIRE_ERROR = 8,       /* a request failed: reason text */
    DV_WIRE_PING = 9,        /* echo request (tests, benchmarks) */
    DV_WIRE_PONG = 10,       /* echo reply */
    DV_WIRE_STARTED = 11,    /* reply to SPAWN: the process runs */
    DV_WIRE_OBJ_OP = 12,     /* an operation on a queue or event */
    DV_WIRE_OBJ_REPLY = 13,  /* its result */
    DV_WIRE_NODE_LOST = 14,  /* head -> agents: a node is gone */
    DV_WIRE_OUTPUT_ACK = 15, /* head -> agent: output bytes written out */
    DV_WIRE_TREE_LOST = 21,  /* agent -> head: my child's launch ended */
    DV_WIRE_TYPE_MAX = 21
} dv_wire_type_t;

/* One field of a decoded message; data points into the decoded buffer. */
typedef struct dv_wire_field {
    uint16_t tag;
    uint32_t len;
    const uint8_t *data;
} dv_wire_field_t;

/* A decoded message. Valid only while the buffer given to
 * dv__wire_decode() lives. */
typedef struct dv_wire_view {
    uint16_t version;
    uint16_t type;
    uint64_t id;
    uint16_t nfields;
    dv_wire_field_t fields[DV_WIRE_MAX_FIELDS];
} dv_wire_view_t;

/* A message being built. Zero-initialise, then dv__wire_begin(); the
 * buffer belongs to it until dv__wire_buf_release() (or is handed over with
 * dv__wire_buf_take()). */
typedef struct dv_wire_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed; /* an allocation failed: dv__wire_end() reports it */
} dv_wire_buf_t;

/* Start a message of the given type (which must be known). Reserves
 * room for body_hint bytes of fields. Returns 0, or -1 (ENOMEM, EINVAL). */
int dv__wire_begin(dv_wire_buf_t *b, uint16_t type, uint64_t id,
                   size_t body_hint, dv_error_t *err);

/* Append a field (bytes are copied). Errors are sticky: check them once
 * with dv__wire_end(). */
void dv__wire_put(dv_wire_buf_t *b, uint16_t tag, const void *data, size_t len);
void dv__wire_put_u64(dv_wire_buf_t *b, uint16_t tag, uint64_t v);
void dv__wire_put_str(dv_wire_buf_t *b, uint16_t tag, const char *s);

/* Finish the header. Returns 0, or -1 with errno ENOMEM (an allocation
 * failed), E2BIG (more than DV_WIRE_MAX_FIELDS fields or a too long body). */
int dv__wire_end(dv_wire_buf_t *b, dv_error_t *err);

/* Free the buffer (NULL-safe) and zero the struct. */
void dv__wire_buf_release(dv_wire_buf_t *b);

/* Hand the finished bytes to the caller, who frees them with free();
 * the struct is left empty. */
uint8_t *dv__wire_buf_take(dv_wire_buf_t *b, size_t *len);

/* Decode len bytes at buf into v (fields point into buf). Returns 0, or -1
 * with errno EPROTO and a reason in err: short, bad magic, other version
 * (both named), unknown type, lengths that disagree, too many fields. */
int dv__wire_decode(const void *buf, size_t len, dv_wire_view_t *v,
                    dv_error_t *err);

/* The first field with this tag, or NULL. */
const dv_wire_field_t *dv__wire_find(const dv_wire_view_t *v, uint16_t tag);

/* Read a field as a u64 (exactly 8 bytes). Returns 0, or -1 (ENOENT: no
 * such field, EPROTO: wrong size). */
int dv__wire_get_u64(const dv_wire_view_t *v, uint16_t tag, uint64_t *out,
                     dv_error_t *err);

/* Copy a text field into out (size n, NUL-terminated). Returns 0, or -1
 * (ENOENT, EPROTO: an embedded NUL, ENAMETOOLONG: does not fit). */
int dv__wire_get_str(const dv_wire_view_t *v, uint16_t tag, char *out, size_t n,
                     dv_error_t *err);

/* The name of a type ("hello"), or "unknown". Static storage. */
const char *dv__wire_type_name(uint16_t type);

#endif
