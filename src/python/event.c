/* drover._drover.Event: a dv_event_t seen from Python, behind
 * drover.synchronize.Event. A wait releases the GIL and sleeps in short
 * slices so that Ctrl-C interrupts it; the others may be a round trip to
 * the event's node, so they release the GIL too. */
#include "python/module.h"

#include <errno.h>

#include <drover/drover.h>

typedef struct {
    PyObject_HEAD dv_event_t *e;
} EventObject;

static PyTypeObject EventType;

static PyObject *wrap(dv_event_t *e)
{
    EventObject *o = PyObject_New(EventObject, &EventType);
    if (!o) {
        dv_event_destroy(&e);
        return NULL;
    }
    o->e = e;
    return (PyObject *)o;
}

static PyObject *event_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)type;
    static char *names[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, ":Event", names))
        return NULL;
    dv_error_t err = {{0}};
    dv_event_t *e = dv_event_create(&err);
    if (!e)
        return dv__py_raise(errno, err.text);
    return wrap(e);
}

/* Event.attach(handle) -> Event: the event another process described. */
static PyObject *event_attach(PyObject *cls, PyObject *args)
{
    (void)cls;
    dv_handle_t handle;
    if (dv__py_parse_handle(args, &handle) < 0)
        return NULL;
    dv_error_t err = {{0}};
    dv_event_t *e;
    Py_BEGIN_ALLOW_THREADS;
    e = dv_event_attach(&handle, &err);
    Py_END_ALLOW_THREADS;
    if (!e)
        return dv__py_raise(errno, err.text);
    return wrap(e);
}

static PyObject *call(EventObject *self, int (*fn)(dv_event_t *),
                      const char *what)
{
    int r;
    Py_BEGIN_ALLOW_THREADS;
    r = fn(self->e);
    Py_END_ALLOW_THREADS;
    if (r < 0)
        return dv__py_raise(errno, what);
    Py_RETURN_NONE;
}

static PyObject *event_set(EventObject *self, PyObject *unused)
{
    (void)unused;
    return call(self, dv_event_set, "set: bad event handle or no runtime");
}

static PyObject *event_clear(EventObject *self, PyObject *unused)
{
    (void)unused;
    return call(self, dv_event_clear, "clear: bad event handle or no runtime");
}

static PyObject *event_is_set(EventObject *self, PyObject *unused)
{
    (void)unused;
    bool v;
    Py_BEGIN_ALLOW_THREADS;
    v = dv_event_is_set(self->e);
    Py_END_ALLOW_THREADS;
    return PyBool_FromLong(v);
}

static int wait_try(void *ctx, double slice_s, dv_error_t *err)
{
    return dv_event_wait(ctx, slice_s, err);
}

/* wait(timeout=None) -> True once set, False when the timeout passed. */
static PyObject *event_wait(EventObject *self, PyObject *args)
{
    PyObject *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "|O:wait", &t) || dv__py_timeout(t, &timeout))
        return NULL;
    int r = dv__py_wait(timeout, wait_try, self->e);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r == 0);
}

/* handle() -> bytes: what attach() takes in another process. */
static PyObject *event_handle(EventObject *self, PyObject *unused)
{
    (void)unused;
    dv_handle_t h;
    if (dv_event_handle(self->e, &h) < 0)
        return dv__py_raise(errno, "handle: bad event");
    return PyBytes_FromStringAndSize((const char *)h.bytes, sizeof(h.bytes));
}

static void event_dealloc(EventObject *self)
{
    dv_event_destroy(&self->e);
    PyObject_Free(self);
}

static PyMethodDef event_methods[] = {
    {"attach", (PyCFunction)event_attach, METH_VARARGS | METH_CLASS,
     "attach(handle) -> Event: the event a handle() describes."},
    {"set", (PyCFunction)event_set, METH_NOARGS, "Set it, waking waiters."},
    {"clear", (PyCFunction)event_clear, METH_NOARGS, "Reset it."},
    {"is_set", (PyCFunction)event_is_set, METH_NOARGS, NULL},
    {"wait", (PyCFunction)event_wait, METH_VARARGS,
     "wait(timeout=None) -> bool: True once set, False on timeout."},
    {"handle", (PyCFunction)event_handle, METH_NOARGS,
     "handle() -> bytes: the event's handle, for attach() elsewhere."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EventType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover._drover.Event",
    .tp_basicsize = sizeof(EventObject),
    .tp_dealloc = (destructor)event_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Event(): a libdrover event; the creator's object removes "
              "it when it goes.",
    .tp_methods = event_methods,
    .tp_new = event_new,
};

int dv__py_event_add_type(PyObject *m)
{
    if (PyType_Ready(&EventType) < 0)
        return -1;
    Py_INCREF(&EventType);
    if (PyModule_AddObject(m, "Event", (PyObject *)&EventType) < 0) {
        Py_DECREF(&EventType);
        return -1;
    }
    return 0;
}
