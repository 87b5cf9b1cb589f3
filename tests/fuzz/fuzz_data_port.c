/* libFuzzer target over the data port's frame decoder (src/cli/mn_data.c):
 * whatever bytes arrive on an agent's data port, with or without the job's
 * token in front, the server must answer or hang up without reading out
 * of bounds, leaking, or touching an object the bytes do not name. The
 * input's first byte picks whether the token is sent first; the rest goes
 * down a socket pair to the server, which runs on this thread until the
 * stream ends. Handles in the frames name no object of this process, so
 * every operation must fail cleanly (nothing blocks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/mn.h"
#include "lib/remote_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t token[DV_DATA_TOKEN] = "the job's token, 32 bytes long.";

/* Send the frames, then drain the answers into nowhere. */
static void feed(int fd, const uint8_t *data, size_t size)
{
    if (size && (data[0] & 1))
        (void)!write(fd, token, sizeof(token));
    if (size > 1)
        (void)!write(fd, data + 1, size - 1);
    shutdown(fd, SHUT_WR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0; /* stays within the socket pair's buffers */
    static mn_data_t *d;
    if (!d && !(d = mn_data_new(token, NULL)))
        abort();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    feed(sv[0], data, size);
    mn_data_serve_conn(d, sv[1]);
    close(sv[1]);
    char sink[4096];
    while (read(sv[0], sink, sizeof(sink)) > 0)
        ;
    close(sv[0]);
    return 0;
}
