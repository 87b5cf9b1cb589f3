/* drover._drover.Shared: a dv_shared_t seen from Python, the bytes under
 * drover.sharedctypes' Value and Array. On the block's home node it
 * exports its mapping through the buffer protocol (ctypes' from_buffer
 * builds the objects over it); on another node it has none, and read()
 * and write() go to the home node (with the GIL released: a round trip). */
#include "python/module.h"

#include <errno.h>
#include <stdlib.h>

#include <drover/drover.h>

typedef struct {
    PyObject_HEAD dv_shared_t *s;
} SharedObject;

static PyTypeObject SharedType;

static PyObject *wrap(dv_shared_t *s)
{
    SharedObject *o = PyObject_New(SharedObject, &SharedType);
    if (!o) {
        dv_shared_destroy(&s);
        return NULL;
    }
    o->s = s;
    return (PyObject *)o;
}

static PyObject *shared_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)type;
    static char *names[] = {"size", NULL};
    Py_ssize_t size;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n:Shared", names, &size))
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "Shared: negative size");
        return NULL;
    }
    dv_error_t err = {{0}};
    dv_shared_t *s = dv_shared_create((size_t)size, &err);
    if (!s)
        return dv__py_raise(errno, err.text);
    return wrap(s);
}

/* Shared.attach(handle) -> Shared: the block another process described. */
static PyObject *shared_attach(PyObject *cls, PyObject *args)
{
    (void)cls;
    dv_handle_t handle;
    if (dv__py_parse_handle(args, &handle) < 0)
        return NULL;
    dv_error_t err = {{0}};
    dv_shared_t *s;
    Py_BEGIN_ALLOW_THREADS;
    s = dv_shared_attach(&handle, &err);
    Py_END_ALLOW_THREADS;
    if (!s)
        return dv__py_raise(errno, err.text);
    return wrap(s);
}

/* An offset and a length, neither negative. */
static int parse_range(Py_ssize_t off, Py_ssize_t len)
{
    if (off >= 0 && len >= 0)
        return 0;
    PyErr_SetString(PyExc_ValueError, "Shared: negative offset or length");
    return -1;
}

/* read(offset, length) -> bytes */
static PyObject *shared_read(SharedObject *self, PyObject *args)
{
    Py_ssize_t off, len;
    if (!PyArg_ParseTuple(args, "nn:read", &off, &len) ||
        parse_range(off, len) < 0)
        return NULL;
    PyObject *b = PyBytes_FromStringAndSize(NULL, len);
    if (!b)
        return NULL;
    dv_error_t err = {{0}};
    int r, e;
    Py_BEGIN_ALLOW_THREADS;
    r = dv_shared_read(self->s, (size_t)off, PyBytes_AS_STRING(b), (size_t)len,
                       &err);
    e = errno;
    Py_END_ALLOW_THREADS;
    if (r < 0) {
        Py_DECREF(b);
        return dv__py_raise(e, err.text);
    }
    return b;
}

/* write(offset, data): data is any bytes-like object. */
static PyObject *shared_write(SharedObject *self, PyObject *args)
{
    Py_ssize_t off;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "ny*:write", &off, &data))
        return NULL;
    if (parse_range(off, 0) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    dv_error_t err = {{0}};
    int r, e;
    Py_BEGIN_ALLOW_THREADS;
    r = dv_shared_write(self->s, (size_t)off, data.buf, (size_t)data.len, &err);
    e = errno;
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&data);
    if (r < 0)
        return dv__py_raise(e, err.text);
    Py_RETURN_NONE;
}

static PyObject *shared_size(SharedObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(dv_shared_size(self->s));
}

/* mapped() -> bool: whether this process has the bytes (the home node). */
static PyObject *shared_mapped(SharedObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(dv_shared_data(self->s) != NULL);
}

/* handle() -> bytes: what attach() takes in another process. */
static PyObject *shared_handle(SharedObject *self, PyObject *unused)
{
    (void)unused;
    dv_handle_t h;
    if (dv_shared_handle(self->s, &h) < 0)
        return dv__py_raise(errno, "handle: bad block");
    return PyBytes_FromStringAndSize((const char *)h.bytes, sizeof(h.bytes));
}

static int shared_getbuffer(SharedObject *self, Py_buffer *view, int flags)
{
    void *p = dv_shared_data(self->s);
    if (!p) {
        PyErr_SetString(PyExc_BufferError,
                        "drover: the block lives on another node: it has no "
                        "memory here (use read and write)");
        view->obj = NULL;
        return -1;
    }
    return PyBuffer_FillInfo(view, (PyObject *)self, p,
                             (Py_ssize_t)dv_shared_size(self->s), 0, flags);
}

static void shared_dealloc(SharedObject *self)
{
    dv_shared_destroy(&self->s);
    PyObject_Free(self);
}

static PyBufferProcs shared_as_buffer = {
    .bf_getbuffer = (getbufferproc)shared_getbuffer,
};

static PyMethodDef shared_methods[] = {
    {"attach", (PyCFunction)shared_attach, METH_VARARGS | METH_CLASS,
     "attach(handle) -> Shared: the block a handle() describes."},
    {"read", (PyCFunction)shared_read, METH_VARARGS,
     "read(offset, length) -> bytes, atomic against other reads and writes."},
    {"write", (PyCFunction)shared_write, METH_VARARGS,
     "write(offset, data): atomic against other reads and writes."},
    {"size", (PyCFunction)shared_size, METH_NOARGS, "The block's bytes."},
    {"mapped", (PyCFunction)shared_mapped, METH_NOARGS,
     "mapped() -> bool: the block is in this process's memory (its "
     "buffer); False on another node than its home."},
    {"handle", (PyCFunction)shared_handle, METH_NOARGS,
     "handle() -> bytes: the block's handle, for attach() elsewhere."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SharedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover._drover.Shared",
    .tp_basicsize = sizeof(SharedObject),
    .tp_dealloc = (destructor)shared_dealloc,
    .tp_as_buffer = &shared_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Shared(size): a libdrover shared memory block of size zero "
              "bytes; the creator's object removes it when it goes.",
    .tp_methods = shared_methods,
    .tp_new = shared_new,
};

int dv__py_shared_add_type(PyObject *m)
{
    if (PyType_Ready(&SharedType) < 0)
        return -1;
    Py_INCREF(&SharedType);
    if (PyModule_AddObject(m, "Shared", (PyObject *)&SharedType) < 0) {
        Py_DECREF(&SharedType);
        return -1;
    }
    return 0;
}
