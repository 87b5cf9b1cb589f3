/* Launching one agent per node through a remote-exec template
 * (`drover run --hostfile FILE --launch-cmd TEMPLATE`): reading the host
 * file, expanding the template for one host, and starting the command with
 * the job's keys on its stdin (never on its command line); and through
 * srun, with what a Slurm allocation says of its nodes (launch_slurm.c). */
#ifndef DROVER_MULTINODE_LAUNCH_H
#define DROVER_MULTINODE_LAUNCH_H

#include <stddef.h>
#include <sys/types.h>

#include "drover/error.h"

#define DV_LAUNCH_DEFAULT_TEMPLATE "ssh -o BatchMode=yes {host} {cmd}"
#define DV_HOST_MAX 255
#define DV_SLOTS_MAX (1 << 20)

/* The hosts of a host file, in file order, and the CPUs each line gives
 * (slots[i], 0 when the line gives none); release with
 * dv__hostlist_free(). */
typedef struct dv_hostlist {
    char **hosts;
    int n;
    int *slots;
} dv_hostlist_t;

/* Parse host-file text: one host a line; blank lines and `#` comments
 * (whole-line or trailing) are skipped; surrounding blanks trimmed. A host
 * is 1..255 characters of [A-Za-z0-9._:-] not starting with '-'. The host
 * may be followed by Open MPI's `slots=N` (the node's CPU count) and
 * `max_slots=M` (checked, then ignored), or end in MPICH's `:N` (a name
 * with one ':' and digits after it); N is 1..DV_SLOTS_MAX. Returns 0, or
 * -1 with EINVAL and "line N: reason" (a bad name, two hosts on a line, an
 * unknown key, a bad count, a duplicate naming both lines, no host at
 * all); out is empty then. */
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
    int in_fd;  /* write end of its stdin when kept open, else -1 */
} dv_launch_child_t;

/* Bytes of a launch's stdin: the keys and the launch plan of a subtree
 * (mn_tree.h); within the pipe size an unprivileged process may set. */
#define DV_LAUNCH_STDIN_MAX (1u << 20)

/* Start argv (PATH searched) with stdin_text (the job's keys, from
 * dv__keys_format(), and the subtree's launch plan; at most
 * DV_LAUNCH_STDIN_MAX, in a pipe made that large, so the write never
 * blocks) as its whole
 * stdin, its stdout on out_fd (-1: /dev/null) and its stderr on a pipe the
 * caller reads for the launcher's error. Returns 0, or -1 with errno and
 * the reason (also when the program cannot be executed). */
int dv__launch_spawn(char *const *argv, const char *stdin_text, int out_fd,
                     dv_launch_child_t *child, dv_error_t *err);
/* The same, but the write end of the child's stdin stays open after the
 * text, in child->in_fd (non-blocking, close-on-exec): a parent agent's
 * way to pass the head's broadcasts on (mn_tree.h). */
int dv__launch_spawn_open(char *const *argv, const char *stdin_text, int out_fd,
                          dv_launch_child_t *child, dv_error_t *err);

/* ---- Slurm (launch_slurm.c) ---- */

/* Expand SLURM_JOB_CPUS_PER_NODE (value: "24(x2),12", "8,4(x3)": a CPU
 * count per node, in the allocation's node order, "(xK)" repeating it K
 * times) into out[0..nalloc-1]; the value must describe exactly nalloc
 * nodes. Returns 0, or -1 with EINVAL and a reason on one line naming the
 * variable and the value. */
int dv__slurm_cpus_parse(const char *value, int nalloc, int *out,
                         dv_error_t *err);

/* The CPUs of drover's nodes 0..n-1 from the allocation's (alloc, nalloc
 * entries): node 0 is allocation node `head` (the one drover run is on),
 * the others the rest in allocation order, as `srun --exclude` of the head
 * gives them. n <= nalloc; returns 0, or -1 with EINVAL. */
int dv__slurm_node_cpus(const int *alloc, int nalloc, int head, int *out,
                        int n);

/* 1 when `srun --version`'s text ("slurm 23.02.7", "slurm-wlm 21.08.5")
 * names a Slurm that has `srun --overlap` (20.11 and later), else 0 (also
 * for text that names no version). */
int dv__slurm_has_overlap(const char *version_text);

/* Run `srun --version` (PATH searched) and say whether it has --overlap
 * (as dv__slurm_has_overlap); 0 when srun cannot be run. */
int dv__srun_has_overlap(void);

/* The srun command line (at most cap - 1 words and a NULL, pointing into
 * the arguments and static strings) that starts cmd once on each of nodes
 * nodes of the allocation but the host `exclude`: one task a node,
 * unbound, the others kept running when one fails, the keys on every
 * task's stdin, and --overlap when overlap is set (steps of a Slurm that
 * has it share the allocation's CPUs with the step drover run is in).
 * The task count is given too: inside a step (node 0's drover run started
 * by srun) srun would take the step's SLURM_NTASKS for it. nodes_arg: a
 * buffer of at least 64 bytes for "--nodes=N" and "--ntasks=N". Returns
 * the number of words, or -1 with E2BIG when cap is too small. */
int dv__srun_argv(int nodes, const char *exclude, int overlap, char *const *cmd,
                  char *nodes_arg, char **argv, int cap);

/* Expand a Slurm node list (SLURM_JOB_NODELIST: "node[1-3,07-08],gpu[1-2]-ib,
 * login", one or more [] ranges a name, zero padding kept) into out's hosts
 * (slots NULL), in order. Returns 0, or -1 with EINVAL and a reason on one
 * line naming the variable and the value; out is empty then. */
int dv__slurm_nodelist_expand(const char *value, dv_hostlist_t *out,
                              dv_error_t *err);

/* ---- Launching from outside the node set (launch_node0.c) ---- */

/* 1 when name is this host by name: DROVER_NODE_NAME when set (emulated
 * nodes), else the hostname, full or short (a name without domain matches
 * the other's first label), or "localhost"; else 0. */
int dv__host_names_self(const char *name);

/* dv__host_names_self, or else name (an address or a name resolved once)
 * is an address of one of this host's interfaces or a loopback address. */
int dv__host_is_self(const char *name);

/* Words as one or more hex words (each under 64 KiB, as a command line
 * word must be), NULL-terminated, malloc'd (dv__launch_argv_free); the
 * words travel through a remote shell unchanged. NULL with errno. */
char **dv__words_encode(char *const *words);

/* The words of dv__words_encode's hex words (n of them), NULL-terminated,
 * malloc'd (dv__launch_argv_free). NULL with EINVAL when not such words. */
char **dv__words_decode(char *const *hex, int n);

#endif
