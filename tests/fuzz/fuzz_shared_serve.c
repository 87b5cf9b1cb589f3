/* libFuzzer target over the home node's decoding of shared memory
 * requests (src/lib/remote_serve.c on src/lib/shared.c): whatever the
 * bytes of a read, write or size request of another node, the home must
 * answer or refuse without touching memory outside the block, and a
 * refused request must change nothing. The input's first byte picks the
 * operation (20 + byte % 4: the three, and one past them), the rest is
 * the request. The results' buffers are checked by AddressSanitizer and
 * the end of the mapping; the segment's header, in the page before the
 * block, must stay as it was, and so must the block after a refusal. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/drover.h"
#include "lib/remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BLOCK 4096

/* The segment's header (lib/shm.h's struct dv__shm_hdr), the page before
 * the block's bytes. */
#define HEADER 64
#define HEADER_PAGE 4096

static dv_shared_t *block;
static dv_handle_t handle;
static struct dv__serve_cache *cache;
static unsigned char before[BLOCK], header[HEADER];

static const unsigned char *header_of(dv_shared_t *s)
{
    return (const unsigned char *)dv_shared_data(s) - HEADER_PAGE;
}

/* At the fuzzer's exit: the segment goes. */
static void teardown(void)
{
    dv__remote_serve_free(&cache);
    dv_shared_destroy(&block);
}

static void setup(void)
{
    char job[48];
    snprintf(job, sizeof(job), "fuzzshared%ld", (long)getpid());
    setenv("DROVER_JOB_ID", job, 1);
    block = dv_shared_create(BLOCK, NULL);
    cache = dv__remote_serve_new();
    if (!block || !cache || dv_shared_handle(block, &handle) < 0)
        abort();
    memcpy(header, header_of(block), HEADER);
    atexit(teardown);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!block)
        setup();
    if (size < 1)
        return 0;
    int op = DV_ROP_SHARED_READ + data[0] % 4;
    memcpy(before, dv_shared_data(block), BLOCK);
    int32_t value = 0;
    void *out = NULL;
    size_t out_len = 0;
    dv_error_t err = {0};
    int rc = dv__remote_serve(&cache, &handle, op, 0, data + 1, size - 1,
                              &value, &out, &out_len, &err);
    if (rc == 0 && op == DV_ROP_SHARED_READ && out_len > BLOCK)
        abort();
    if (rc == 0 && op == DV_ROP_SHARED_SIZE &&
        (out_len != sizeof(uint64_t) || memcmp(out, &(uint64_t){BLOCK}, 8)))
        abort();
    if (rc < 0 && (errno == 0 || !err.text[0]))
        abort();
    if (rc < 0 && memcmp(before, dv_shared_data(block), BLOCK) != 0)
        abort();
    if (memcmp(header, header_of(block), HEADER) != 0)
        abort();
    free(out);
    return 0;
}
