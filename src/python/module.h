/* drover._drover: what the extension's files share (never installed). */
#ifndef DROVER_PYTHON_MODULE_H
#define DROVER_PYTHON_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <drover/error.h>
#include <drover/handle.h>
#include <drover/placement.h>

/* Raise OSError(e, text) (a subclass by errno, as os does); returns NULL. */
PyObject *dv__py_raise(int e, const char *text);

/* attach(handle)'s argument: the bytes of a drover handle. Returns 0, or
 * -1 with an exception (not bytes, or not a handle's size). */
int dv__py_parse_handle(PyObject *args, dv_handle_t *out);

/* Longest wait with the GIL released before pending signals are checked,
 * so that Ctrl-C interrupts a blocking call. */
#define DV_PY_SLICE_S 0.05

/* A timeout argument: None waits for ever (-1), a negative one polls (0),
 * as multiprocessing's. Returns 0, or -1 with an exception (NaN, a type). */
int dv__py_timeout(PyObject *t, double *out);

/* One try of a blocking call, run without the GIL: 0 when done, else -1
 * with errno (ETIMEDOUT or EAGAIN: not yet) and err filled. */
typedef int (*dv__py_try_f)(void *ctx, double slice_s, dv_error_t *err);

/* Run fn in slices of at most DV_PY_SLICE_S until it is done (0), the
 * timeout (< 0: none) has passed (1), or it fails or a signal handler
 * raises (-1, with the exception set; OSError by errno for a failure). */
int dv__py_wait(double timeout, dv__py_try_f fn, void *ctx);

/* A placement parsed from Python: p.host points into host. */
typedef struct dv__py_placement {
    dv_placement_t p;
    char host[256];
} dv__py_placement_t;

/* The entry point for whatever places something: a PyArg "O&" converter
 * (out: a dv__py_placement_t) taking None (the default placement) or a
 * drover.Placement, read through its `_c` tuple (policy, node, host or
 * None, gpu; python/drover/nodes.py). Returns 1, or 0 with TypeError or
 * ValueError set. */
int dv__py_placement(PyObject *obj, void *out);

/* _drover.nodes(): the node table as tuples (node.c). */
PyObject *dv__py_nodes(PyObject *self, PyObject *unused);

/* _drover.getenv(name): the C environment's value, or None (node.c). */
PyObject *dv__py_getenv(PyObject *self, PyObject *args);

/* Add the POLICY_* constants to module m. Returns 0, or -1. */
int dv__py_node_add(PyObject *m);

/* _drover.start(data, placement=None): start the Python process task on a
 * copy of data where placement says. */
PyObject *dv__py_process_start(PyObject *self, PyObject *args);

/* Add the Process type to module m. Returns 0, or -1 with an exception. */
int dv__py_process_add_type(PyObject *m);

/* Add the Queue type (and queue.Empty, queue.Full for its errors). */
int dv__py_queue_add_type(PyObject *m);

/* Add the Event type. */
int dv__py_event_add_type(PyObject *m);

/* Add the Pool type (drover.pool.Pool's engine; its worker tasks). */
int dv__py_pool_add_type(PyObject *m);

/* After a fork made inside libdrover (dv_init, the fork server): run
 * Python's own after-fork steps, as os.fork() does, in the child or the
 * parent. */
void dv__py_after_fork(void);

/* Add the Shared type (shared memory blocks, for drover.sharedctypes). */
int dv__py_shared_add_type(PyObject *m);

/* Add the SemLock and Barrier types (sync.c, barrier.c). */
int dv__py_sync_add_types(PyObject *m);
int dv__py_barrier_add_type(PyObject *m);

#endif
