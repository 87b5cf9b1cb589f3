/* A job's CURVE keys: making them, and moving them to a launched agent as
 * text through a descriptor or the environment (see keys.h for why never
 * the command line). */
#include "transport/keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "common/error.h"

#define KEYS_TAG "drover-keys-1"

int dv__keys_generate(dv_job_keys_t *k, dv_error_t *err)
{
    if (!zmq_has("curve"))
        return dv__errprintf(err, ENOTSUP, "keys: libzmq lacks CURVE");
    if (zmq_curve_keypair(k->server_public, k->server_secret) != 0 ||
        zmq_curve_keypair(k->client_public, k->client_secret) != 0) {
        int e = errno;
        dv__keys_wipe(k);
        errno = e;
        return dv__errsys(err, "keys: zmq_curve_keypair");
    }
    return 0;
}

void dv__keys_format(const dv_job_keys_t *k, char *out)
{
    snprintf(out, DV_KEYS_TEXT, "%s %s %s %s %s\n", KEYS_TAG, k->server_public,
             k->server_secret, k->client_public, k->client_secret);
}

/* A Z85 key: exactly 40 characters of the Z85 alphabet. */
static int is_z85_key(const char *s, size_t n)
{
    static const char alphabet[] =
        "0123456789abcdefghijklmnopqrstuvwxyz"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (n != DV_KEY_TEXT - 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(alphabet, s[i]))
            return 0;
    return 1;
}

int dv__keys_parse(const char *text, dv_job_keys_t *k, dv_error_t *err)
{
    dv_job_keys_t tmp;
    char *dst[4] = {tmp.server_public, tmp.server_secret, tmp.client_public,
                    tmp.client_secret};
    size_t taglen = strlen(KEYS_TAG);
    if (strncmp(text, KEYS_TAG " ", taglen + 1) != 0)
        return dv__errprintf(err, EINVAL, "keys: not a drover key set");
    const char *p = text + taglen + 1;
    for (int i = 0; i < 4; i++) {
        size_t n = strcspn(p, " \n");
        if (!is_z85_key(p, n)) {
            dv__keys_wipe(&tmp);
            return dv__errprintf(err, EINVAL, "keys: key %d malformed", i + 1);
        }
        memcpy(dst[i], p, n);
        dst[i][n] = '\0';
        p += n;
        if (i < 3 && *p++ != ' ') {
            dv__keys_wipe(&tmp);
            return dv__errprintf(err, EINVAL, "keys: key %d missing", i + 2);
        }
    }
    if (*p == '\n')
        p++;
    if (*p) {
        dv__keys_wipe(&tmp);
        return dv__errprintf(err, EINVAL, "keys: trailing bytes");
    }
    *k = tmp;
    dv__keys_wipe(&tmp);
    return 0;
}

int dv__keys_write_fd(int fd, const dv_job_keys_t *k, dv_error_t *err)
{
    char text[DV_KEYS_TEXT];
    dv__keys_format(k, text);
    size_t len = strlen(text), off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = dv__errsys(err, "keys: write");
            break;
        }
        off += (size_t)n;
    }
    explicit_bzero(text, sizeof(text));
    return rc;
}

int dv__keys_read_fd(int fd, dv_job_keys_t *k, dv_error_t *err)
{
    char text[DV_KEYS_TEXT + 1];
    size_t len = 0;
    while (len < sizeof(text) - 1) {
        ssize_t n = read(fd, text + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            explicit_bzero(text, sizeof(text));
            return dv__errsys(err, "keys: read");
        }
        if (n == 0 || text[len++] == '\n')
            break;
    }
    text[len] = '\0';
    int rc = dv__keys_parse(text, k, err);
    explicit_bzero(text, sizeof(text));
    return rc;
}

static int keys_from_fd_env(const char *s, dv_job_keys_t *k, dv_error_t *err)
{
    char *end;
    errno = 0;
    long fd = strtol(s, &end, 10);
    if (errno || end == s || *end || fd < 0 || fd > 65535)
        return dv__errprintf(err, EINVAL, "keys: %s=%s is not a descriptor",
                             DV_KEYS_FD_ENV, s);
    int rc = dv__keys_read_fd((int)fd, k, err);
    int e = errno;
    close((int)fd);
    errno = e;
    return rc;
}

int dv__keys_from_env(dv_job_keys_t *k, dv_error_t *err)
{
    const char *fd = getenv(DV_KEYS_FD_ENV);
    char *text = getenv(DV_KEYS_ENV);
    int rc;
    if (fd)
        rc = keys_from_fd_env(fd, k, err);
    else if (text)
        rc = dv__keys_parse(text, k, err);
    else
        return dv__errprintf(err, ENOENT, "keys: neither %s nor %s is set",
                             DV_KEYS_FD_ENV, DV_KEYS_ENV);
    int e = errno;
    if (text)
        explicit_bzero(text, strlen(text));
    unsetenv(DV_KEYS_FD_ENV);
    unsetenv(DV_KEYS_ENV);
    errno = e;
    return rc;
}

void dv__keys_wipe(dv_job_keys_t *k)
{
    if (k)
        explicit_bzero(k, sizeof(*k));
}
