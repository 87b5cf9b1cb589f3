/* Launching one agent per node through a remote-exec template
 * (`drover run --hostfile FILE --launch-cmd TEMPLATE`): reading the host
 * file, expanding the template for one host, and starting the command with
 * the job's keys on its stdin (never on its command line). */
#ifndef DROVER_CLI_LAUNCH_H
#define DROVER_CLI_LAUNCH_H

#include <stddef.h>
#include <sys/types.h>

#include "drover/error.h"

#define DV_LAUNCH_DEFAULT_TEMPLATE "ssh -o BatchMode=yes {host} {cmd}"
#define DV_HOST_MAX 255

/* The hosts of a host file, in file order; release with
 * dv__hostlist_free(). */
typedef struct dv_hostlist {
    char **hosts;
    int n;
} dv_hostlist_t;

/* Parse host-file text: one host a line; blank lines and `#` comments
 * (whole-line or trailing) are skipped; surrounding blanks trimmed. A host
 * is 1..255 characters of [A-Za-z0-9._:-] not starting with '-'. Returns
 * 0, or -1 with EINVAL and "LINE N: reason" (a bad name, two words on a
 * line, a duplicate naming both lines, no host at all); out is empty then. */
int dv__hostfile_parse_text(const char *text, size_t len, dv_hostlist_t *out,
                            dv_error_t *err);

/* 1 when name is a host name the node table can hold (a host file's rule:
 * 1..255 characters of [A-Za-z0-9._:-], not starting with '-'), else 0;
 * also for names that come from DROVER_NODE_NAME or a hostname. */
int dv__host_name_valid(const char *name);

/* Read and parse a host file (at most 1 MiB). Errors as above, plus the
 * errno of open/read with the path in the reason. */
int dv__hostfile_read(const char *path, dv_hostlist_t *out, dv_error_t *err);

/* Free the list (NULL-safe) and leave it empty. */
void dv__hostlist_free(dv_hostlist_t *l);

/* Expand a template into a NULL-terminated argv (malloc'd; free with
 * dv__launch_argv_free()). The template is split at blanks (no shell, no
 * quoting); "{host}" is replaced inside any word; a word that is exactly
 * "{cmd}" becomes the words of cmd. The template must hold {cmd} once. A
 * cmd word with characters a remote shell would interpret is refused, so
 * that ssh-style and exec-style templates run the same command. Returns
 * NULL with EINVAL and the reason. */
char **dv__launch_expand(const char *tmpl, const char *host, char *const *cmd,
                         dv_error_t *err);

void dv__launch_argv_free(char **argv);

/* A started launch command. */
typedef struct dv_launch_child {
    pid_t pid;
    int err_fd; /* read end of its stderr (non-blocking, close-on-exec) */
} dv_launch_child_t;

/* Start argv (PATH searched) with stdin_text (the job's keys, from
 * dv__keys_format(); at most 4 KiB, so the write never blocks) as its whole
 * stdin, its stdout on out_fd (-1: /dev/null) and its stderr on a pipe the
 * caller reads for the launcher's error. Returns 0, or -1 with errno and
 * the reason (also when the program cannot be executed). */
int dv__launch_spawn(char *const *argv, const char *stdin_text, int out_fd,
                     dv_launch_child_t *child, dv_error_t *err);

#endif
