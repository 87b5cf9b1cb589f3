/* drover._drover.Queue: a dv_queue_t seen from Python, moving the byte
 * strings that drover.queues.Queue pickles. put_parts() gathers a pickle
 * and its out-of-band buffers into one message (each byte copied once,
 * into the queue), get_buffer() hands a message over as a writable Buffer
 * that owns the one copy made out of the queue, so that arrays unpickled
 * over it need no other. A put copies into the queue's
 * shared memory before it returns (no feeder thread as multiprocessing's);
 * blocking puts and gets release the GIL and wait in short slices so that
 * Ctrl-C interrupts them. Full and empty raise queue.Full and queue.Empty,
 * the exceptions multiprocessing.Queue raises. */
#include "python/module.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/uio.h>

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

struct putv_args {
    dv_queue_t *q;
    const struct iovec *iov;
    int n;
};

static int putv_try(void *ctx, double slice_s, dv_error_t *err)
{
    struct putv_args *a = ctx;
    return dv_queue_putv(a->q, a->iov, a->n, slice_s, err);
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

/* A message taken out of a queue: malloc'd bytes, exported writable. */
typedef struct {
    PyObject_HEAD void *data;
    size_t len;
    Py_ssize_t exports;
} BufferObject;

static int buffer_getbuffer(BufferObject *self, Py_buffer *view, int flags)
{
    int rc = PyBuffer_FillInfo(view, (PyObject *)self,
                               self->data ? self->data : (void *)"",
                               (Py_ssize_t)self->len, 0, flags);
    if (rc == 0)
        self->exports++;
    return rc;
}

static void buffer_releasebuffer(BufferObject *self, Py_buffer *view)
{
    (void)view;
    self->exports--;
}

static void buffer_dealloc(BufferObject *self)
{
    free(self->data);
    PyObject_Free(self);
}

static Py_ssize_t buffer_length(BufferObject *self)
{
    return (Py_ssize_t)self->len;
}

static PyBufferProcs buffer_procs = {
    (getbufferproc)buffer_getbuffer,
    (releasebufferproc)buffer_releasebuffer,
};

static PySequenceMethods buffer_sequence = {.sq_length =
                                                (lenfunc)buffer_length};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover._drover.Buffer",
    .tp_basicsize = sizeof(BufferObject),
    .tp_dealloc = (destructor)buffer_dealloc,
    .tp_as_buffer = &buffer_procs,
    .tp_as_sequence = &buffer_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A message taken from a queue (writable bytes; memoryview() "
              "it).",
};

/* put_parts(parts, timeout=None): one message of the parts (buffers) one
 * after another, each copied once into the queue (queue.Full). */
static PyObject *queue_put_parts(QueueObject *self, PyObject *args)
{
    PyObject *seq, *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "O|O:put_parts", &seq, &t) ||
        dv__py_timeout(t, &timeout) < 0)
        return NULL;
    PyObject *fast = PySequence_Fast(seq, "put_parts: parts must be a list");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast), got = 0;
    Py_buffer *views = n ? PyMem_Calloc((size_t)n, sizeof(Py_buffer)) : NULL;
    struct iovec *iov = n ? PyMem_Calloc((size_t)n, sizeof(*iov)) : NULL;
    int r = -1;
    if (n && (!views || !iov)) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < n; got++) {
        PyObject *part = PySequence_Fast_GET_ITEM(fast, got);
        if (PyObject_GetBuffer(part, &views[got], PyBUF_SIMPLE) < 0)
            goto done;
        iov[got] = (struct iovec){views[got].buf, (size_t)views[got].len};
    }
    struct putv_args a = {self->q, iov, (int)n};
    r = n > INT_MAX ? -1 : dv__py_wait(timeout, putv_try, &a);
    if (n > INT_MAX)
        PyErr_SetString(PyExc_ValueError, "put_parts: too many parts");
    else if (r > 0)
        PyErr_SetNone(queue_full);
done:
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(iov);
    Py_DECREF(fast);
    if (r != 0)
        return NULL;
    Py_RETURN_NONE;
}

/* get_buffer(timeout=None) -> Buffer: as get(), without a copy to bytes. */
static PyObject *queue_get_buffer(QueueObject *self, PyObject *args)
{
    PyObject *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "|O:get_buffer", &t) ||
        dv__py_timeout(t, &timeout))
        return NULL;
    struct get_args a = {self->q, NULL, 0};
    int r = dv__py_wait(timeout, get_try, &a);
    if (r < 0)
        return NULL;
    if (r > 0) {
        PyErr_SetNone(queue_empty);
        return NULL;
    }
    BufferObject *b = PyObject_New(BufferObject, &BufferType);
    if (!b) {
        free(a.data);
        return NULL;
    }
    b->data = a.data;
    b->len = a.len;
    b->exports = 0;
    return (PyObject *)b;
}

static int join_try(void *ctx, double slice_s, dv_error_t *err)
{
    return dv_queue_join(ctx, slice_s, err);
}

/* join(timeout=None) -> True when nothing is unfinished, False on timeout. */
static PyObject *queue_join(QueueObject *self, PyObject *args)
{
    PyObject *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "|O:join", &t) || dv__py_timeout(t, &timeout))
        return NULL;
    int r = dv__py_wait(timeout, join_try, self->q);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r == 0);
}

static int wait_try(void *ctx, double slice_s, dv_error_t *err)
{
    return dv_queue_wait(ctx, slice_s, err);
}

/* wait(timeout=None) -> True when a get would not wait (a message, or
 * closed), False on timeout; takes nothing. */
static PyObject *queue_wait(QueueObject *self, PyObject *args)
{
    PyObject *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "|O:wait", &t) || dv__py_timeout(t, &timeout))
        return NULL;
    int r = dv__py_wait(timeout, wait_try, self->q);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r == 0);
}

/* A call that does not block: task_done, hold, release, close. */
static PyObject *queue_call(QueueObject *self, int (*fn)(dv_queue_t *q),
                            const char *what)
{
    int r, e;
    Py_BEGIN_ALLOW_THREADS;
    r = fn(self->q);
    e = errno;
    Py_END_ALLOW_THREADS;
    if (r < 0)
        return dv__py_raise(e, what);
    Py_RETURN_NONE;
}

static int task_done(dv_queue_t *q)
{
    return dv_queue_task_done(q, NULL);
}

static PyObject *queue_task_done(QueueObject *self, PyObject *unused)
{
    (void)unused;
    return queue_call(self, task_done, "task_done: none unfinished");
}

static PyObject *queue_hold(QueueObject *self, PyObject *unused)
{
    (void)unused;
    return queue_call(self, dv_queue_hold, "hold");
}

static PyObject *queue_release(QueueObject *self, PyObject *unused)
{
    (void)unused;
    return queue_call(self, dv_queue_release, "release: none held");
}

static PyObject *queue_close(QueueObject *self, PyObject *unused)
{
    (void)unused;
    return queue_call(self, dv_queue_close, "close");
}

static PyObject *queue_unfinished(QueueObject *self, PyObject *unused)
{
    (void)unused;
    long n;
    Py_BEGIN_ALLOW_THREADS;
    n = dv_queue_unfinished(self->q);
    Py_END_ALLOW_THREADS;
    if (n < 0)
        return dv__py_raise(errno, "unfinished: bad queue or no runtime");
    return PyLong_FromLong(n);
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
    {"put_parts", (PyCFunction)queue_put_parts, METH_VARARGS,
     "put_parts(parts, timeout=None): one message of the parts, each copied "
     "once."},
    {"get_buffer", (PyCFunction)queue_get_buffer, METH_VARARGS,
     "get_buffer(timeout=None) -> Buffer: the oldest message, not copied "
     "again."},
    {"task_done", (PyCFunction)queue_task_done, METH_NOARGS,
     "One message taken is finished (OSError ERANGE: none unfinished)."},
    {"join", (PyCFunction)queue_join, METH_VARARGS,
     "join(timeout=None) -> bool: wait until every message is finished."},
    {"wait", (PyCFunction)queue_wait, METH_VARARGS,
     "wait(timeout=None) -> bool: whether a get would not wait now."},
    {"unfinished", (PyCFunction)queue_unfinished, METH_NOARGS,
     "Messages put and not yet finished."},
    {"hold", (PyCFunction)queue_hold, METH_NOARGS, "One more holder."},
    {"release", (PyCFunction)queue_release, METH_NOARGS,
     "One holder less; the last closes the queue."},
    {"close", (PyCFunction)queue_close, METH_NOARGS,
     "Close for every process: puts fail, gets drain, then fail (EPIPE)."},
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
    if (!queue_empty || !queue_full || PyType_Ready(&QueueType) < 0 ||
        PyType_Ready(&BufferType) < 0)
        return -1;
    Py_INCREF(&QueueType);
    if (PyModule_AddObject(m, "Queue", (PyObject *)&QueueType) < 0) {
        Py_DECREF(&QueueType);
        return -1;
    }
    Py_INCREF(&BufferType);
    if (PyModule_AddObject(m, "Buffer", (PyObject *)&BufferType) < 0) {
        Py_DECREF(&BufferType);
        return -1;
    }
    return 0;
}
