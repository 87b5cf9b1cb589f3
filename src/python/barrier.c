/* drover._drover.Barrier: a dv_barrier_t seen from Python, in the steps
 * of dv_barrier_arrive/await/give_up/pass, so that drover.synchronize's
 * Barrier waits in slices (Ctrl-C interrupts) and runs its action in
 * Python between arrive and pass. A broken barrier raises BrokenPipeError
 * (EPIPE), which drover.synchronize turns into BrokenBarrierError. */
#include "python/module.h"

#include <errno.h>

#include <drover/drover.h>

typedef struct {
    PyObject_HEAD dv_barrier_t *b;
} BarrierObject;

static PyTypeObject BarrierType;

static PyObject *wrap(dv_barrier_t *b)
{
    BarrierObject *o = PyObject_New(BarrierObject, &BarrierType);
    if (!o) {
        dv_barrier_destroy(&b);
        return NULL;
    }
    o->b = b;
    return (PyObject *)o;
}

static PyObject *barrier_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)type;
    static char *names[] = {"parties", NULL};
    long parties;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "l:Barrier", names, &parties))
        return NULL;
    if (parties < 1 || parties > DV_BARRIER_PARTIES_MAX) {
        PyErr_Format(PyExc_ValueError, "Barrier: parties must be 1 to %d",
                     DV_BARRIER_PARTIES_MAX);
        return NULL;
    }
    dv_error_t err = {{0}};
    dv_barrier_t *b = dv_barrier_create((uint32_t)parties, &err);
    if (!b)
        return dv__py_raise(errno, err.text);
    return wrap(b);
}

static PyObject *barrier_attach(PyObject *cls, PyObject *args)
{
    (void)cls;
    dv_handle_t handle;
    if (dv__py_parse_handle(args, &handle) < 0)
        return NULL;
    dv_error_t err = {{0}};
    dv_barrier_t *b;
    Py_BEGIN_ALLOW_THREADS;
    b = dv_barrier_attach(&handle, &err);
    Py_END_ALLOW_THREADS;
    if (!b)
        return dv__py_raise(errno, err.text);
    return wrap(b);
}

struct arrive_ctx {
    dv_barrier_t *b;
    int hold;
    dv_barrier_ticket_t t;
};

static int arrive_try(void *ctx, double slice_s, dv_error_t *err)
{
    struct arrive_ctx *a = ctx;
    return dv_barrier_arrive(a->b, a->hold, slice_s, &a->t, err) < 0 ? -1 : 0;
}

/* arrive(hold) -> (index, gen): waits while another generation is held. */
static PyObject *barrier_arrive(BarrierObject *self, PyObject *args)
{
    int hold;
    if (!PyArg_ParseTuple(args, "p:arrive", &hold))
        return NULL;
    struct arrive_ctx a = {self->b, hold, {0, 0}};
    if (dv__py_wait(-1, arrive_try, &a) < 0)
        return NULL;
    return Py_BuildValue("(ik)", (int)a.t.index, (unsigned long)a.t.gen);
}

static int parse_ticket(PyObject *args, const char *fmt, dv_barrier_ticket_t *t,
                        PyObject **timeout)
{
    unsigned long gen;
    int index;
    if (!PyArg_ParseTuple(args, fmt, &gen, &index, timeout))
        return -1;
    t->gen = (uint32_t)gen;
    t->index = index;
    return 0;
}

struct await_ctx {
    dv_barrier_t *b;
    dv_barrier_ticket_t t;
};

static int await_try(void *ctx, double slice_s, dv_error_t *err)
{
    struct await_ctx *a = ctx;
    return dv_barrier_await(a->b, &a->t, slice_s, err);
}

/* await_(gen, index, timeout=None) -> True once passed, False when the
 * timeout passed first (the barrier still waits: see give_up). */
static PyObject *barrier_await(BarrierObject *self, PyObject *args)
{
    struct await_ctx a = {self->b, {0, 0}};
    PyObject *t = Py_None;
    double timeout;
    if (parse_ticket(args, "ki|O:await_", &a.t, &t) < 0 ||
        dv__py_timeout(t, &timeout) < 0)
        return NULL;
    int r = dv__py_wait(timeout, await_try, &a);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r == 0);
}

/* give_up(gen, index) -> True when it passed meanwhile; else raises:
 * TimeoutError (it broke the barrier), BlockingIOError (held: wait on),
 * BrokenPipeError. */
static PyObject *barrier_give_up(BarrierObject *self, PyObject *args)
{
    dv_barrier_ticket_t t;
    PyObject *unused = NULL;
    if (parse_ticket(args, "ki|O:give_up", &t, &unused) < 0)
        return NULL;
    dv_error_t err = {{0}};
    int r, e;
    Py_BEGIN_ALLOW_THREADS;
    r = dv_barrier_give_up(self->b, &t, &err);
    e = errno;
    Py_END_ALLOW_THREADS;
    if (r < 0)
        return dv__py_raise(e, err.text);
    Py_RETURN_TRUE;
}

static PyObject *barrier_pass(BarrierObject *self, PyObject *args)
{
    dv_barrier_ticket_t t;
    PyObject *unused = NULL;
    if (parse_ticket(args, "ki|O:pass_", &t, &unused) < 0)
        return NULL;
    dv_error_t err = {{0}};
    int r, e;
    Py_BEGIN_ALLOW_THREADS;
    r = dv_barrier_pass(self->b, &t, &err);
    e = errno;
    Py_END_ALLOW_THREADS;
    if (r < 0)
        return dv__py_raise(e, err.text);
    Py_RETURN_NONE;
}

/* A call that answers an int: abort, reset, n_waiting, broken, parties. */
static PyObject *int_call(BarrierObject *self,
                          int (*fn)(dv_barrier_t *, dv_error_t *), int as_bool)
{
    dv_error_t err = {{0}};
    int r, e;
    Py_BEGIN_ALLOW_THREADS;
    r = fn(self->b, &err);
    e = errno;
    Py_END_ALLOW_THREADS;
    if (r < 0)
        return dv__py_raise(e, err.text);
    return as_bool ? PyBool_FromLong(r) : PyLong_FromLong(r);
}

static PyObject *barrier_abort(BarrierObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *r = int_call(self, dv_barrier_abort, 0);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *barrier_reset(BarrierObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *r = int_call(self, dv_barrier_reset, 0);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *barrier_n_waiting(BarrierObject *self, PyObject *unused)
{
    (void)unused;
    return int_call(self, dv_barrier_n_waiting, 0);
}

static PyObject *barrier_broken(BarrierObject *self, PyObject *unused)
{
    (void)unused;
    return int_call(self, dv_barrier_broken, 1);
}

static PyObject *barrier_parties(BarrierObject *self, PyObject *unused)
{
    (void)unused;
    return int_call(self, dv_barrier_parties, 0);
}

static PyObject *barrier_handle(BarrierObject *self, PyObject *unused)
{
    (void)unused;
    dv_handle_t h;
    if (dv_barrier_handle(self->b, &h) < 0)
        return dv__py_raise(errno, "handle: bad barrier");
    return PyBytes_FromStringAndSize((const char *)h.bytes, sizeof(h.bytes));
}

static void barrier_dealloc(BarrierObject *self)
{
    dv_barrier_destroy(&self->b);
    PyObject_Free(self);
}

static PyMethodDef barrier_methods[] = {
    {"attach", (PyCFunction)barrier_attach, METH_VARARGS | METH_CLASS,
     "attach(handle) -> Barrier: the barrier a handle() describes."},
    {"arrive", (PyCFunction)barrier_arrive, METH_VARARGS,
     "arrive(hold) -> (index, gen)"},
    {"await_", (PyCFunction)barrier_await, METH_VARARGS,
     "await_(gen, index, timeout=None) -> bool"},
    {"give_up", (PyCFunction)barrier_give_up, METH_VARARGS,
     "give_up(gen, index) -> True, or raises"},
    {"pass_", (PyCFunction)barrier_pass, METH_VARARGS,
     "pass_(gen, index): the holder releases its generation."},
    {"abort", (PyCFunction)barrier_abort, METH_NOARGS, NULL},
    {"reset", (PyCFunction)barrier_reset, METH_NOARGS, NULL},
    {"n_waiting", (PyCFunction)barrier_n_waiting, METH_NOARGS, NULL},
    {"broken", (PyCFunction)barrier_broken, METH_NOARGS, NULL},
    {"parties", (PyCFunction)barrier_parties, METH_NOARGS, NULL},
    {"handle", (PyCFunction)barrier_handle, METH_NOARGS,
     "handle() -> bytes: for attach() in another process."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BarrierType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover._drover.Barrier",
    .tp_basicsize = sizeof(BarrierObject),
    .tp_dealloc = (destructor)barrier_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Barrier(parties): a libdrover barrier; the creator's object "
              "removes it when it goes.",
    .tp_methods = barrier_methods,
    .tp_new = barrier_new,
};

int dv__py_barrier_add_type(PyObject *m)
{
    if (PyType_Ready(&BarrierType) < 0)
        return -1;
    Py_INCREF(&BarrierType);
    if (PyModule_AddObject(m, "Barrier", (PyObject *)&BarrierType) < 0) {
        Py_DECREF(&BarrierType);
        return -1;
    }
    return 0;
}
