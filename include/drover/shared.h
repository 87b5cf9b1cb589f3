/* drover: shared memory blocks, the bytes under multiprocessing's Value and
 * Array.
 *
 * A block of N bytes lives on the node that created it (its home). A
 * process of the home node maps it (dv_shared_data) and may also use
 * dv_shared_read and dv_shared_write; a process of another node has no
 * mapping, and its reads and writes go to the home node. Each read or
 * write of at most DV_SHARED_ATOMIC_MAX bytes is atomic against every
 * other dv_shared_read and dv_shared_write of the block, wherever they
 * run (not against plain stores through the mapping). Errors: EINVAL (a
 * range outside the block, a bad or forged handle), ENOENT (stale
 * handle), ENOSPC (no room in /dev/shm), ENOTCONN (the home node is
 * gone). */
#ifndef DROVER_SHARED_H
#define DROVER_SHARED_H

#include <stddef.h>

#include "drover/error.h"
#include "drover/export.h"
#include "drover/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest range one read or write moves in one piece (and so atomically)
 * from or to another node; longer ones go in pieces of this size, in
 * order. On the home node every call is one piece. */
#define DV_SHARED_ATOMIC_MAX ((size_t)16 << 20)

/* Largest block. */
#define DV_SHARED_MAX ((size_t)1 << 40)

typedef struct dv_shared dv_shared_t;

/* Create a block of size bytes (0 .. DV_SHARED_MAX), all zero, on the
 * caller's node; its memory is allocated now. The caller owns the result;
 * dv_shared_destroy() of the creator's copy removes the block (processes
 * that attached it keep their mapping until they destroy theirs). */
DV_API dv_shared_t *dv_shared_create(size_t size, dv_error_t *err);

/* Attach the block of a handle; from another node this asks the home node
 * for its size (ENOENT when it is gone). The caller owns the result and
 * releases it with dv_shared_destroy(), which then only detaches. */
DV_API dv_shared_t *dv_shared_attach(const dv_handle_t *h, dv_error_t *err);

/* Describe s in *out, to attach it in another process. */
DV_API int dv_shared_handle(const dv_shared_t *s, dv_handle_t *out);

/* The block's size in bytes (0 for NULL). */
DV_API size_t dv_shared_size(const dv_shared_t *s);

/* The block's bytes in this process, page-aligned, valid until
 * dv_shared_destroy(s); NULL when the block lives on another node (or s
 * is NULL, errno EINVAL). */
DV_API void *dv_shared_data(dv_shared_t *s);

/* Copy len bytes at offset off of the block into buf. EINVAL when
 * [off, off + len) is not inside the block; nothing is copied then. */
DV_API int dv_shared_read(dv_shared_t *s, size_t off, void *buf, size_t len,
                          dv_error_t *err);

/* Copy len bytes of buf into the block at offset off; EINVAL as for
 * dv_shared_read, and nothing is written then. */
DV_API int dv_shared_write(dv_shared_t *s, size_t off, const void *buf,
                           size_t len, dv_error_t *err);

/* Detach (and, for the creator's copy, remove the block); sets *s = NULL.
 * Accepts NULL and keeps errno. */
DV_API void dv_shared_destroy(dv_shared_t **s);

#ifdef __cplusplus
}
#endif

#endif
