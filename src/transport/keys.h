/* A job's CURVE keys: one server keypair (every listening socket of the
 * job: head and agents) and one client keypair (every connecting socket).
 * `drover run` makes them; they reach the agents through the launch, as an
 * inherited file descriptor or the environment of the launched process,
 * never on a command line that `ps` shows. A peer that lacks them cannot
 * connect: the server side accepts only the job's client public key. */
#ifndef DROVER_TRANSPORT_KEYS_H
#define DROVER_TRANSPORT_KEYS_H

#include <stddef.h>

#include "drover/error.h"

/* Z85 text of a 32-byte CURVE key, plus the NUL. */
#define DV_KEY_TEXT 41
/* The text form: "drover-keys-1 SP SS CP CS\n" plus the NUL. */
#define DV_KEYS_TEXT (14 + 4 * DV_KEY_TEXT + 1)

/* The environment variables that carry the keys to a launched agent:
 * DROVER_KEYS_FD names an inherited descriptor to read them from;
 * DROVER_KEYS holds the text itself. */
#define DV_KEYS_FD_ENV "DROVER_KEYS_FD"
#define DV_KEYS_ENV "DROVER_KEYS"

/* Plain value type; wipe it with dv__keys_wipe() when done. */
typedef struct dv_job_keys {
    char server_public[DV_KEY_TEXT];
    char server_secret[DV_KEY_TEXT];
    char client_public[DV_KEY_TEXT];
    char client_secret[DV_KEY_TEXT];
} dv_job_keys_t;

/* Make fresh keys for a job. Returns 0, or -1 (ENOTSUP: libzmq without
 * CURVE). */
int dv__keys_generate(dv_job_keys_t *k, dv_error_t *err);

/* Write the text form into out (at least DV_KEYS_TEXT bytes). */
void dv__keys_format(const dv_job_keys_t *k, char *out);

/* Parse the text form (the trailing newline is optional). Returns 0, or -1
 * with EINVAL and the reason; k is untouched then. */
int dv__keys_parse(const char *text, dv_job_keys_t *k, dv_error_t *err);

/* Write the text form to fd (a pipe or file made for the launch). */
int dv__keys_write_fd(int fd, const dv_job_keys_t *k, dv_error_t *err);

/* Read the text form from fd until EOF or a newline (at most one line). */
int dv__keys_read_fd(int fd, dv_job_keys_t *k, dv_error_t *err);

/* An agent's side: take the keys from DROVER_KEYS_FD (the descriptor is
 * read and closed) or else DROVER_KEYS, then remove both variables so
 * that no child inherits them. Returns 0, or -1 (ENOENT: neither set,
 * EINVAL: malformed). */
int dv__keys_from_env(dv_job_keys_t *k, dv_error_t *err);

/* Zero the secrets in a way the compiler keeps. NULL-safe. */
void dv__keys_wipe(dv_job_keys_t *k);

#endif
