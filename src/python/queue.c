/* drover._drover.Queue: a dv_queue_t seen from Python, moving the byte
 * strings that drover.queues.Queue pickles. A put copies into the queue's
 * shared memory before it returns (no feeder thread as multiprocessing's);
 * blocking puts and gets release the GIL and wait in short slices so that
 * Ctrl-C interrupts them. Full and empty raise queue.Full and queue.Empty,
 * the exceptions multiprocessing.Queue raises. */
#include "python/module.h"

#include <errno.h>
#include <stdlib.h>

#include <drover/drover.h>

typedef struct {
    PyObject_HEAD dv_queue_t *q;
} QueueObject;

static PyTypeObject QueueType;
static PyObject *queue_empty; /* queue.Empty */
static PyObject *queue_full;  /* queue.Full */

static PyObject *wrap(dv_queue_t *q)
{
    QueueObject *o = PyObject_New(QueueObject, &QueueType);
    if (!o) {
        dv_queue_destroy(&q);
        return NULL;
    }
    o->q = q;
    return (PyObject *)o;
}

static PyObject *queue_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)type;
    static char *names[] = {"maxsize", NULL};
    Py_ssize_t maxsize = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|n:Queue", names, &maxsize))
        return NULL;
    dv_error_t err = {{0}};
    dv_queue_t *q = dv_queue_create(maxsize > 0 ? (size_t)maxsize : 0, &err);
    if (!q)
        return dv__py_raise(errno, err.text);
    return wrap(q);
}

/* Queue.attach(handle) -> Queue: the queue another process described. */
static PyObject *queue_attach(PyObject *cls, PyObject *args)
{
    (void)cls;
    dv_handle_t handle;
    if (dv__py_parse_handle(args, &handle) < 0)
        return NULL;
    dv_error_t err = {{0}};
    dv_queue_t *q;
    Py_BEGIN_ALLOW_THREADS;
    q = dv_queue_attach(&handle, &err);
    Py_END_ALLOW_THREADS;
    if (!q)
        return dv__py_raise(errno, err.text);
    return wrap(q);
}

struct put_args {
    dv_queue_t *q;
    const void *data;
    size_t len;
};

static int put_try(void *ctx, double slice_s, dv_error_t *err)
{
    struct put_args *a = ctx;
    return dv_queue_put(a->q, a->data, a->len, slice_s, err);
}

/* put(data, timeout=None): queue.Full once the timeout has passed. */
static PyObject *queue_put(QueueObject *self, PyObject *args)
{
    Py_buffer data;
    PyObject *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "y*|O:put", &data, &t))
        return NULL;
    if (dv__py_timeout(t, &timeout) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    struct put_args a = {self->q, data.buf, (size_t)data.len};
    int r = dv__py_wait(timeout, put_try, &a);
    PyBuffer_Release(&data);
    if (r < 0)
        return NULL;
    if (r > 0) {
        PyErr_SetNone(queue_full);
        return NULL;
    }
    Py_RETURN_NONE;
}

struct get_args {
    dv_queue_t *q;
    void *data;
    size_t len;
};

static int get_try(void *ctx, double slice_s, dv_error_t *err)
{
    struct get_args *a = ctx;
    return dv_queue_get(a->q, &a->data, &a->len, slice_s, err);
}

/* get(timeout=None) -> bytes: queue.Empty once the timeout has passed. */
static PyObject *queue_get(QueueObject *self, PyObject *args)
{
    PyObject *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "|O:get", &t) || dv__py_timeout(t, &timeout))
        return NULL;
    struct get_args a = {self->q, NULL, 0};
    int r = dv__py_wait(timeout, get_try, &a);
    if (r < 0)
        return NULL;
    if (r > 0) {
        PyErr_SetNone(queue_empty);
        return NULL;
    }
    PyObject *b = PyBytes_FromStringAndSize(a.data, (Py_ssize_t)a.len);
    free(a.data);
    return b;
}

static PyObject *queue_size(QueueObject *self, PyObject *unused)
{
    (void)unused;
    long n;
    Py_BEGIN_ALLOW_THREADS;
    n = dv_queue_size(self->q);
    Py_END_ALLOW_THREADS;
    if (n < 0)
        return dv__py_raise(errno, "qsize: bad queue handle or no runtime");
    return PyLong_FromLong(n);
}

/* handle() -> bytes: what attach() takes in another process. */
static PyObject *queue_handle(QueueObject *self, PyObject *unused)
{
    (void)unused;
    dv_handle_t h;
    if (dv_queue_handle(self->q, &h) < 0)
        return dv__py_raise(errno, "handle: bad queue");
    return PyBytes_FromStringAndSize((const char *)h.bytes, sizeof(h.bytes));
}

static void queue_dealloc(QueueObject *self)
{
    dv_queue_destroy(&self->q);
    PyObject_Free(self);
}

static PyMethodDef queue_methods[] = {
    {"attach", (PyCFunction)queue_attach, METH_VARARGS | METH_CLASS,
     "attach(handle) -> Queue: the queue a handle() describes."},
    {"put", (PyCFunction)queue_put, METH_VARARGS,
     "put(data, timeout=None): append a copy (queue.Full on timeout)."},
    {"get", (PyCFunction)queue_get, METH_VARARGS,
     "get(timeout=None) -> bytes: the oldest message (queue.Empty)."},
    {"size", (PyCFunction)queue_size, METH_NOARGS, "Messages waiting now."},
    {"handle", (PyCFunction)queue_handle, METH_NOARGS,
     "handle() -> bytes: the queue's handle, for attach() elsewhere."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject QueueType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover._drover.Queue",
    .tp_basicsize = sizeof(QueueObject),
    .tp_dealloc = (destructor)queue_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Queue(maxsize=0): a libdrover queue of byte strings; the "
              "creator's object removes it when it goes.",
    .tp_methods = queue_methods,
    .tp_new = queue_new,
};

int dv__py_queue_add_type(PyObject *m)
{
    PyObject *mod = PyImport_ImportModule("queue");
    if (!mod)
        return -1;
    queue_empty = PyObject_GetAttrString(mod, "Empty");
    queue_full = PyObject_GetAttrString(mod, "Full");
    Py_DECREF(mod);
    if (!queue_empty || !queue_full || PyType_Ready(&QueueType) < 0)
        return -1;
    Py_INCREF(&QueueType);
    if (PyModule_AddObject(m, "Queue", (PyObject *)&QueueType) < 0) {
        Py_DECREF(&QueueType);
        return -1;
    }
    return 0;
}
