/* Internal (owner: multi-node runtime): the frames of the data plane, a
 * plain TCP connection from a process to the agent of the node where a
 * queue or event lives (remote.c is the client, src/cli/mn_data.c the
 * server). The connection starts with the job's data token (32 bytes, from
 * the rundir's "token" file, handed out over the CURVE control plane);
 * then each request gets one reply. Native byte order: every node runs the
 * same drover build. */
#ifndef DROVER_LIB_REMOTE_WIRE_H
#define DROVER_LIB_REMOTE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define DV_DATA_MAGIC 0x44564451u /* "QDVD" */
#define DV_DATA_TOKEN 32

struct dv__data_req {
    uint32_t magic;
    uint32_t op; /* DV_ROP_* */
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
    uint32_t pad;
    uint64_t len; /* result bytes that follow the text */
};

/* remote_io.c: read exactly n bytes / send every byte of iov[0..n) (the
 * iovecs are consumed); 0, or -1 on error or end of stream. */
struct iovec;
int dv__data_read(int fd, void *p, size_t n);
int dv__data_send(int fd, struct iovec *iov, int n);

#endif
