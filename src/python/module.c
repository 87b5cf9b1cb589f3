/* drover._drover: the CPython extension over libdrover's public API.
 *
 * _init() joins the job (dv_init). The fork server is then a fork of the
 * interpreter as it is at that moment, so a task child comes back here,
 * inside the _init() call, with the GIL held: the task registered below
 * runs drover.context._child_main() on its argument bytes (a pickled
 * multiprocessing Process) and exits with the code it returns. Python's
 * own fork hooks (os.register_at_fork, the import lock, thread states) are
 * run around dv_init as os.fork() runs them, since the forks happen inside
 * libdrover where Python cannot see them. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <drover/drover.h>

#include "python/module.h"

#include <string.h>

static pid_t init_pid; /* the pid that called dv_init */
static int init_done;  /* dv_init returned 0 in this process */

int dv__py_parse_handle(PyObject *args, dv_handle_t *out)
{
    Py_buffer h;
    if (!PyArg_ParseTuple(args, "y*:attach", &h))
        return -1;
    int ok = (size_t)h.len == sizeof(out->bytes);
    if (ok)
        memcpy(out->bytes, h.buf, sizeof(out->bytes));
    PyBuffer_Release(&h);
    if (!ok)
        PyErr_SetString(PyExc_ValueError, "attach: not a drover handle");
    return ok ? 0 : -1;
}

PyObject *dv__py_raise(int e, const char *text)
{
    PyObject *args = Py_BuildValue("(is)", e, text);
    if (args) {
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
    }
    return NULL;
}

int dv__py_timeout(PyObject *t, double *out)
{
    if (t == Py_None) {
        *out = -1;
        return 0;
    }
    double v = PyFloat_AsDouble(t);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (isnan(v)) {
        PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
        return -1;
    }
    *out = v < 0 ? 0 : v;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int dv__py_wait(double timeout, dv__py_try_f fn, void *ctx)
{
    double deadline = now_s() + timeout;
    for (;;) {
        double slice = DV_PY_SLICE_S;
        if (timeout >= 0) {
            double left = deadline - now_s();
            slice = left < slice ? (left > 0 ? left : 0) : slice;
        }
        dv_error_t err = {{0}};
        int r, e;
        Py_BEGIN_ALLOW_THREADS;
        r = fn(ctx, slice, &err);
        e = errno;
        Py_END_ALLOW_THREADS;
        if (r == 0)
            return 0;
        if (e != ETIMEDOUT && e != EAGAIN) {
            dv__py_raise(e, err.text);
            return -1;
        }
        if (timeout >= 0 && now_s() >= deadline)
            return 1;
        if (PyErr_CheckSignals() < 0)
            return -1;
    }
}

/* After a fork made inside dv_init: a process with a new pid is a child
 * of the interpreter that called it (the main process of a private job, a
 * task), the same pid is the parent (under `drover run`). */
void dv__py_after_fork(void)
{
    static pid_t done_in; /* a task child that has done it (the prelude) */
    pid_t self = getpid();
    if (self == done_in)
        return;
    if (self != init_pid) {
        done_in = self;
        PyOS_AfterFork_Child();
    } else {
        PyOS_AfterFork_Parent();
    }
}

/* The task of every Python process: argument bytes are the pickles that
 * drover.context.Popen made. Returns the Process's exit code. */
DV_TASK(dv_python_process)(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    dv__py_after_fork();
    PyObject *mod = PyImport_ImportModule("drover.context");
    PyObject *r = NULL;
    if (mod) {
        r = PyObject_CallMethod(mod, "_child_main", "y#", (const char *)arg,
                                (Py_ssize_t)len);
        Py_DECREF(mod);
    }
    long code = 1;
    if (r && PyLong_Check(r))
        code = PyLong_AsLong(r);
    if (!r || PyErr_Occurred()) {
        /* _child_main reports its own errors; this is the last resort
         * (SystemExit must not reach PyErr_Print, which would exit). */
        PyErr_Clear();
        fprintf(stderr, "drover: python process: cannot run its target\n");
        code = 1;
    }
    Py_XDECREF(r);
    return (int)code;
}

static PyObject *py_init(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (init_done)
        Py_RETURN_NONE;
    dv_error_t err = {{0}};
    init_pid = getpid();
    /* Each task child resets the interpreter once, ahead of its task
     * where the fork server forked it ahead. */
    dv_task_set_prelude(dv__py_after_fork);
    PyOS_BeforeFork();
    /* In a task child this call does not return (the task runs inside). */
    int r = dv_init(NULL, NULL, &err);
    int e = errno;
    dv__py_after_fork();
    if (r < 0)
        return dv__py_raise(e, err.text);
    init_done = 1;
    Py_RETURN_NONE;
}

static PyObject *py_node_self(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLong(dv_node_self());
}

static PyMethodDef methods[] = {
    {"_init", py_init, METH_NOARGS,
     "Join the job (or start a private one). Call once, before threads."},
    {"start", dv__py_process_start, METH_VARARGS,
     "start(data, placement=None) -> Process: run the Python process task "
     "on data where placement (a drover.Placement) says."},
    {"nodes", dv__py_nodes, METH_NOARGS,
     "nodes() -> [(index, hostname, address, cpus, gpus, uid), ...]"},
    {"getenv", dv__py_getenv, METH_VARARGS,
     "getenv(name) -> str or None, from the C environment."},
    {"node_self", py_node_self, METH_NOARGS,
     "Index of this process's node, -1 before _init()."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "drover._drover",
    "libdrover for Python (use the drover package).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__drover(void);

PyMODINIT_FUNC PyInit__drover(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (dv__py_process_add_type(m) < 0 || dv__py_queue_add_type(m) < 0 ||
        dv__py_event_add_type(m) < 0 || dv__py_shared_add_type(m) < 0 ||
        dv__py_node_add(m) < 0 || dv__py_sync_add_types(m) < 0 ||
        dv__py_pool_add_type(m) < 0 ||
        PyModule_AddStringConstant(m, "VERSION", DROVER_VERSION) < 0 ||
        PyModule_AddStringConstant(m, "PROCESS_TASK", "dv_python_process") <
            0 ||
        PyModule_AddIntConstant(m, "MESSAGE_MAX", (long)DV_MESSAGE_MAX) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
