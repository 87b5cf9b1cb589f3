/* The runtime's wire messages (owner: core-runtime): one codec for every
 * transport of the control plane (unix sockets on a node today, ZeroMQ
 * frames between nodes later). A message is a 12-byte header (magic, type,
 * version, body length) and a body of typed fields; decoding never trusts
 * the bytes it reads. Never installed. */
#ifndef DROVER_LIB_MSG_H
#define DROVER_LIB_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "drover/queue.h"

#define DV_MSG_MAGIC 0x564f5244u /* "DROV" little-endian */
#define DV_MSG_VERSION 1
#define DV_MSG_HDR 12
/* Largest body: a full-size argument plus the fixed fields. */
#define DV_MSG_BODY_MAX (DV_MESSAGE_MAX + 4096)

enum dv__msg_type {
    /* client -> fork server; fd: status table; a body of i32 1 asks for
     * EXITED messages (the node service, client of its node's host) */
    DV_MSG_HELLO = 1,
    DV_MSG_START = 2,  /* u32 slot, i32 gpu, str task, tail arg */
    DV_MSG_SIGNAL = 3, /* u32 slot, i32 signo */
    DV_MSG_OK = 4,     /* i32 value (a pid for START) */
    DV_MSG_ERR = 5,    /* i32 errno, str reason */
    /* process -> its node's agent (multi-node; HELLO passes the table) */
    DV_MSG_RSTART = 6,  /* u32 slot, i32 node, i32 gpu, str task, tail arg */
    DV_MSG_RSIGNAL = 7, /* u32 slot, i32 signo */
    /* i32 node, u32 op, u64 timeout (double bits), bytes handle, tail in;
     * answered OK (i32 value, tail out) or ERR (remote.h) */
    DV_MSG_OBJOP = 8,
    DV_MSG_HOST = 9,    /* a node's host -> its agent: its fork server is up */
    DV_MSG_EXITED = 10, /* fork server -> client: u32 slot, i32 pid, i32 code */
    DV_MSG_TYPE_MAX = 10,
};

/* A body being built: malloc'd buffer. */
typedef struct dv__msgw {
    uint8_t *buf;
    size_t len, cap;
    int failed; /* an allocation failed: sending fails with ENOMEM */
} dv__msgw_t;

void dv__msgw_init(dv__msgw_t *w);
void dv__msgw_free(dv__msgw_t *w);
void dv__msgw_u32(dv__msgw_t *w, uint32_t v);
void dv__msgw_i32(dv__msgw_t *w, int32_t v);
void dv__msgw_u64(dv__msgw_t *w, uint64_t v);
/* A length-prefixed byte string (u32 length). */
void dv__msgw_bytes(dv__msgw_t *w, const void *p, size_t n);
void dv__msgw_str(dv__msgw_t *w, const char *s);

/* A body being read: borrowed bytes. Once a read fails, every later read
 * fails too and bad is set. */
typedef struct dv__msgr {
    const uint8_t *p;
    size_t left;
    int bad;
} dv__msgr_t;

void dv__msgr_init(dv__msgr_t *r, const void *p, size_t n);
uint32_t dv__msgr_u32(dv__msgr_t *r);
int32_t dv__msgr_i32(dv__msgr_t *r);
uint64_t dv__msgr_u64(dv__msgr_t *r);
/* A byte string: *p borrowed from the body. Returns its length. */
size_t dv__msgr_bytes(dv__msgr_t *r, const void **p);
/* A string copied into buf (cap bytes, NUL-terminated); fails (bad) when
 * it does not fit or holds a NUL. */
void dv__msgr_str(dv__msgr_t *r, char *buf, size_t cap);
/* The rest of the body (the tail). */
size_t dv__msgr_tail(dv__msgr_t *r, const void **p);

/* Encode a header for a body of len bytes into out[DV_MSG_HDR]. */
void dv__msg_hdr_pack(uint8_t *out, uint16_t type, size_t len);
/* Decode and check a header: 0 with *type and *len, or -1 (EPROTO bad
 * magic/version/type, EMSGSIZE body over DV_MSG_BODY_MAX). */
int dv__msg_hdr_parse(const uint8_t *in, uint16_t *type, size_t *len);

/* Send one message on a stream socket: header, body w (may be NULL), then
 * tail bytes; pass_fd >= 0 travels with it (SCM_RIGHTS). 0 or -1. */
int dv__msg_send(int sock, uint16_t type, const dv__msgw_t *w, const void *tail,
                 size_t tail_len, int pass_fd);

/* Receive one message: *body malloc'd (caller frees; NULL when empty),
 * *fd_out the passed fd or -1 (may be NULL: a passed fd is closed).
 * Returns 0, or -1 with errno (ECONNRESET on end of stream, EPROTO). */
int dv__msg_recv(int sock, uint16_t *type, void **body, size_t *len,
                 int *fd_out);

#endif
