/* drover._drover.SemLock and drover._drover.Barrier: libdrover's
 * semaphores and barriers seen from Python, behind drover.synchronize.
 *
 * SemLock has the interface of _multiprocessing.SemLock that
 * multiprocessing.synchronize's classes use: kind RECURSIVE_MUTEX (0) or
 * SEMAPHORE (1), a count of this process's acquisitions and the thread
 * that made the last one (an RLock's owner and depth live here, in the
 * owning process, as in CPython). Waits release the GIL and run in short
 * slices (dv__py_wait) so that Ctrl-C interrupts them. */
#include "python/module.h"

#include <errno.h>
#include <unistd.h>

#include <drover/drover.h>
#include <pythread.h>

enum { RECURSIVE_MUTEX = 0, SEMAPHORE = 1 };

typedef struct {
    PyObject_HEAD dv_sem_t *s;
    int kind;
    long maxvalue;
    long count;             /* acquisitions of this process, not released */
    unsigned long last_tid; /* the thread of the last acquisition */
    pid_t pid;              /* the process count is about */
} SemLockObject;

static PyTypeObject SemLockType;

static PyObject *semlock_wrap(PyTypeObject *type, dv_sem_t *s, int kind,
                              long maxvalue)
{
    SemLockObject *o = (SemLockObject *)type->tp_alloc(type, 0);
    if (!o) {
        dv_sem_destroy(&s);
        return NULL;
    }
    o->s = s;
    o->kind = kind;
    o->maxvalue = maxvalue;
    o->pid = getpid();
    return (PyObject *)o;
}

static int check_kind(int kind, long maxvalue)
{
    if (kind != RECURSIVE_MUTEX && kind != SEMAPHORE) {
        PyErr_SetString(PyExc_ValueError, "SemLock: unknown kind");
        return -1;
    }
    if (maxvalue < 1 || maxvalue > (long)DV_SEM_VALUE_MAX) {
        PyErr_SetString(PyExc_ValueError, "SemLock: maxvalue out of range");
        return -1;
    }
    return 0;
}

/* SemLock(kind, value, maxvalue) */
static PyObject *semlock_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *names[] = {"kind", "value", "maxvalue", NULL};
    int kind;
    long value, maxvalue;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ill:SemLock", names, &kind,
                                     &value, &maxvalue) ||
        check_kind(kind, maxvalue) < 0)
        return NULL;
    if (value < 0 || value > maxvalue) {
        PyErr_SetString(PyExc_ValueError,
                        value < 0 ? "semaphore initial value must be >= 0"
                                  : "semaphore initial value above maxvalue");
        return NULL;
    }
    dv_error_t err = {{0}};
    dv_sem_t *s = dv_sem_create((uint32_t)value, (uint32_t)maxvalue, &err);
    if (!s)
        return dv__py_raise(errno, err.text);
    return semlock_wrap(type, s, kind, maxvalue);
}

/* SemLock.attach(handle, kind, maxvalue): the semaphore handle() gave. */
static PyObject *semlock_attach(PyObject *cls, PyObject *args)
{
    Py_buffer hb;
    int kind;
    long maxvalue;
    if (!PyArg_ParseTuple(args, "y*il:attach", &hb, &kind, &maxvalue))
        return NULL;
    PyObject *one = Py_BuildValue("(y#)", hb.buf, hb.len);
    PyBuffer_Release(&hb);
    dv_handle_t h;
    int bad = !one || dv__py_parse_handle(one, &h) < 0;
    Py_XDECREF(one);
    if (bad || check_kind(kind, maxvalue) < 0)
        return NULL;
    dv_error_t err = {{0}};
    dv_sem_t *s;
    Py_BEGIN_ALLOW_THREADS;
    s = dv_sem_attach(&h, &err);
    Py_END_ALLOW_THREADS;
    if (!s)
        return dv__py_raise(errno, err.text);
    return semlock_wrap((PyTypeObject *)cls, s, kind, maxvalue);
}

static int is_mine(const SemLockObject *o)
{
    return o->count > 0 && o->pid == getpid() &&
           o->last_tid == PyThread_get_thread_ident();
}

static int acquire_try(void *ctx, double slice_s, dv_error_t *err)
{
    return dv_sem_acquire(ctx, slice_s, err);
}

/* acquire(block=True, timeout=None) -> bool */
static PyObject *semlock_acquire(SemLockObject *self, PyObject *args,
                                 PyObject *kw)
{
    static char *names[] = {"block", "timeout", NULL};
    int block = 1;
    PyObject *t = Py_None;
    double timeout = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pO:acquire", names, &block,
                                     &t))
        return NULL;
    if (self->kind == RECURSIVE_MUTEX && is_mine(self)) {
        self->count++;
        Py_RETURN_TRUE;
    }
    if (!block)
        timeout = 0;
    else if (dv__py_timeout(t, &timeout) < 0)
        return NULL;
    int r = dv__py_wait(timeout, acquire_try, self->s);
    if (r < 0)
        return NULL;
    if (r > 0)
        Py_RETURN_FALSE;
    if (self->pid != getpid()) { /* counts of a parent's fork are not ours */
        self->pid = getpid();
        self->count = 0;
    }
    self->count++;
    self->last_tid = PyThread_get_thread_ident();
    Py_RETURN_TRUE;
}

static PyObject *semlock_release(SemLockObject *self, PyObject *unused)
{
    (void)unused;
    if (self->kind == RECURSIVE_MUTEX) {
        if (!is_mine(self)) {
            PyErr_SetString(PyExc_AssertionError,
                            "attempt to release recursive lock not owned by "
                            "thread");
            return NULL;
        }
        if (self->count > 1) {
            self->count--;
            Py_RETURN_NONE;
        }
    }
    /* Counted down first: once the GIL is let go, another thread of this
     * process may take the semaphore and count itself in. */
    int counted = self->count > 0 && self->pid == getpid();
    if (counted)
        self->count--;
    dv_error_t err = {{0}};
    int r, e;
    Py_BEGIN_ALLOW_THREADS;
    r = dv_sem_release(self->s, &err);
    e = errno;
    Py_END_ALLOW_THREADS;
    if (r < 0 && counted)
        self->count++; /* not released: nobody can have taken it */
    if (r < 0 && e == EOVERFLOW) {
        PyErr_SetString(PyExc_ValueError,
                        "semaphore or lock released too many times");
        return NULL;
    }
    if (r < 0)
        return dv__py_raise(e, err.text);
    Py_RETURN_NONE;
}

static PyObject *semlock_enter(SemLockObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *no = PyTuple_New(0);
    if (!no)
        return NULL;
    PyObject *r = semlock_acquire(self, no, NULL);
    Py_DECREF(no);
    return r;
}

static PyObject *semlock_exit(SemLockObject *self, PyObject *args)
{
    (void)args;
    return semlock_release(self, NULL);
}

static PyObject *semlock_count(SemLockObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(self->pid == getpid() ? self->count : 0);
}

static PyObject *semlock_is_mine(SemLockObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(is_mine(self));
}

static int64_t value_of(SemLockObject *self, dv_error_t *err)
{
    int64_t v;
    Py_BEGIN_ALLOW_THREADS;
    v = dv_sem_value(self->s, err);
    Py_END_ALLOW_THREADS;
    return v;
}

static PyObject *semlock_get_value(SemLockObject *self, PyObject *unused)
{
    (void)unused;
    dv_error_t err = {{0}};
    int64_t v = value_of(self, &err);
    return v < 0 ? dv__py_raise(errno, err.text) : PyLong_FromLongLong(v);
}

static PyObject *semlock_is_zero(SemLockObject *self, PyObject *unused)
{
    (void)unused;
    dv_error_t err = {{0}};
    int64_t v = value_of(self, &err);
    return v < 0 ? dv__py_raise(errno, err.text) : PyBool_FromLong(v == 0);
}

static PyObject *semlock_after_fork(SemLockObject *self, PyObject *unused)
{
    (void)unused;
    self->count = 0;
    self->pid = getpid();
    Py_RETURN_NONE;
}

static PyObject *semlock_handle(SemLockObject *self, PyObject *unused)
{
    (void)unused;
    dv_handle_t h;
    if (dv_sem_handle(self->s, &h) < 0)
        return dv__py_raise(errno, "handle: bad semaphore");
    return PyBytes_FromStringAndSize((const char *)h.bytes, sizeof(h.bytes));
}

static PyObject *semlock_get_kind(SemLockObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(self->kind);
}

static PyObject *semlock_get_maxvalue(SemLockObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(self->maxvalue);
}

static PyObject *semlock_get_name(SemLockObject *self, void *closure)
{
    (void)self;
    (void)closure;
    Py_RETURN_NONE;
}

static void semlock_dealloc(SemLockObject *self)
{
    dv_sem_destroy(&self->s);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef semlock_methods[] = {
    {"attach", (PyCFunction)semlock_attach, METH_VARARGS | METH_CLASS,
     "attach(handle, kind, maxvalue) -> SemLock: the one handle() gave."},
    {"acquire", (PyCFunction)(void (*)(void))semlock_acquire,
     METH_VARARGS | METH_KEYWORDS, "acquire(block=True, timeout=None) -> bool"},
    {"release", (PyCFunction)semlock_release, METH_NOARGS, "Release it."},
    {"__enter__", (PyCFunction)semlock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)semlock_exit, METH_VARARGS, NULL},
    {"_count", (PyCFunction)semlock_count, METH_NOARGS,
     "Acquisitions of this process not released yet."},
    {"_is_mine", (PyCFunction)semlock_is_mine, METH_NOARGS,
     "Whether this thread holds it."},
    {"_get_value", (PyCFunction)semlock_get_value, METH_NOARGS, NULL},
    {"_is_zero", (PyCFunction)semlock_is_zero, METH_NOARGS, NULL},
    {"_after_fork", (PyCFunction)semlock_after_fork, METH_NOARGS, NULL},
    {"handle", (PyCFunction)semlock_handle, METH_NOARGS,
     "handle() -> bytes: for attach() in another process."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef semlock_getset[] = {
    {"kind", (getter)semlock_get_kind, NULL, NULL, NULL},
    {"maxvalue", (getter)semlock_get_maxvalue, NULL, NULL, NULL},
    {"name", (getter)semlock_get_name, NULL, "None: drover's have no name",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SemLockType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover._drover.SemLock",
    .tp_basicsize = sizeof(SemLockObject),
    .tp_dealloc = (destructor)semlock_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SemLock(kind, value, maxvalue): a libdrover semaphore; the "
              "creator's object removes it when it goes.",
    .tp_methods = semlock_methods,
    .tp_getset = semlock_getset,
    .tp_new = semlock_new,
};

int dv__py_sync_add_types(PyObject *m)
{
    if (PyType_Ready(&SemLockType) < 0)
        return -1;
    PyObject *max = PyLong_FromUnsignedLong(DV_SEM_VALUE_MAX);
    int bad =
        !max || PyDict_SetItemString(SemLockType.tp_dict, "SEM_VALUE_MAX", max);
    Py_XDECREF(max);
    if (bad)
        return -1;
    PyType_Modified(&SemLockType);
    Py_INCREF(&SemLockType);
    if (PyModule_AddObject(m, "SemLock", (PyObject *)&SemLockType) < 0) {
        Py_DECREF(&SemLockType);
        return -1;
    }
    return dv__py_barrier_add_type(m);
}
