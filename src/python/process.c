/* drover._drover.Process: a dv_process_t seen from Python, the handle
 * behind drover.context.Popen. Waits release the GIL and are cut into
 * short slices so that Ctrl-C (a pending signal) interrupts a join as it
 * interrupts multiprocessing's. */
#include "python/module.h"

#include <errno.h>

#include <drover/drover.h>

typedef struct {
    PyObject_HEAD dv_process_t *p;
} ProcessObject;

static PyTypeObject ProcessType;

PyObject *dv__py_process_start(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer data;
    dv__py_placement_t where = {DV_PLACEMENT_DEFAULT, ""};
    if (!PyArg_ParseTuple(args, "y*|O&:start", &data, dv__py_placement, &where))
        return NULL;
    ProcessObject *o = PyObject_New(ProcessObject, &ProcessType);
    if (!o) {
        PyBuffer_Release(&data);
        return NULL;
    }
    dv_error_t err = {{0}};
    dv_process_t *p;
    Py_BEGIN_ALLOW_THREADS;
    p = dv_process_start("dv_python_process", data.buf, (size_t)data.len,
                         &where.p, &err);
    Py_END_ALLOW_THREADS;
    int e = errno;
    PyBuffer_Release(&data);
    o->p = p;
    if (!p) {
        Py_DECREF(o);
        return dv__py_raise(e, err.text);
    }
    return (PyObject *)o;
}

static int join_try(void *ctx, double slice_s, dv_error_t *err)
{
    return dv_process_join(ctx, slice_s, err);
}

/* join(timeout=None) -> True once ended, False when the timeout passed. */
static PyObject *process_join(ProcessObject *self, PyObject *args)
{
    PyObject *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "|O:join", &t) || dv__py_timeout(t, &timeout))
        return NULL;
    int r = dv__py_wait(timeout, join_try, self->p);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r == 0);
}

/* exitcode() -> int (-N: killed by signal N), or None while it runs. */
static PyObject *process_exitcode(ProcessObject *self, PyObject *unused)
{
    (void)unused;
    int code;
    if (dv_process_exitcode(self->p, &code) == 0)
        return PyLong_FromLong(code);
    if (errno == EAGAIN)
        Py_RETURN_NONE;
    return dv__py_raise(errno, "exitcode: bad process handle or no runtime");
}

static PyObject *process_is_alive(ProcessObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(dv_process_is_alive(self->p));
}

static PyObject *send(ProcessObject *self, int (*fn)(dv_process_t *),
                      const char *what)
{
    if (fn(self->p) == 0)
        Py_RETURN_NONE;
    char text[64];
    snprintf(text, sizeof(text), "%s: %s", what,
             errno == ESRCH ? "the process has ended" : "cannot signal");
    return dv__py_raise(errno, text);
}

static PyObject *process_terminate(ProcessObject *self, PyObject *unused)
{
    (void)unused;
    return send(self, dv_process_terminate, "terminate");
}

static PyObject *process_kill(ProcessObject *self, PyObject *unused)
{
    (void)unused;
    return send(self, dv_process_kill, "kill");
}

static PyObject *process_pid(ProcessObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong((long)dv_process_pid(self->p));
}

static PyObject *process_node(ProcessObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(dv_process_node(self->p));
}

static void process_dealloc(ProcessObject *self)
{
    dv_process_destroy(&self->p);
    PyObject_Free(self);
}

static PyMethodDef process_methods[] = {
    {"join", (PyCFunction)process_join, METH_VARARGS,
     "join(timeout=None) -> bool: True once the process has ended."},
    {"exitcode", (PyCFunction)process_exitcode, METH_NOARGS,
     "Exit code, -N when signal N killed it, None while it runs."},
    {"is_alive", (PyCFunction)process_is_alive, METH_NOARGS, NULL},
    {"terminate", (PyCFunction)process_terminate, METH_NOARGS,
     "Send SIGTERM (ProcessLookupError once it has ended)."},
    {"kill", (PyCFunction)process_kill, METH_NOARGS,
     "Send SIGKILL (ProcessLookupError once it has ended)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef process_getset[] = {
    {"pid", (getter)process_pid, NULL, "Its pid on its node.", NULL},
    {"node", (getter)process_node, NULL, "Index of its node.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ProcessType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover._drover.Process",
    .tp_basicsize = sizeof(ProcessObject),
    .tp_dealloc = (destructor)process_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A process of the job (made by start()).",
    .tp_methods = process_methods,
    .tp_getset = process_getset,
};

int dv__py_process_add_type(PyObject *m)
{
    if (PyType_Ready(&ProcessType) < 0)
        return -1;
    Py_INCREF(&ProcessType);
    if (PyModule_AddObject(m, "Process", (PyObject *)&ProcessType) < 0) {
        Py_DECREF(&ProcessType);
        return -1;
    }
    return 0;
}
