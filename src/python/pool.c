/* drover._drover.Pool: libdrover's pool (dv_pool_t) for drover.pool.Pool,
 * and the two tasks its workers run.
 *
 * Parent side: submit() hands a list of byte strings (pickled chunks) to
 * dv_pool_submit with a result callback. The callback runs on the pool's
 * manager thread without the GIL: it moves the result into a list of
 * notes (room for it was reserved at submit, so it never allocates), and
 * results() hands the notes to the Python thread that resolves the jobs
 * (drover.pool's result handler), waiting with the GIL released.
 *
 * Worker side: every worker is a fork of the interpreter made at `import
 * drover`. dv_python_pool_init runs once per worker (the pool's init
 * task): Python's fork hooks, then drover.pool._worker_init on the init
 * bytes (main module, initializer). Each item then goes through
 * dv_python_pool_item to drover.pool._worker_run, which unpickles the
 * function and its chunk and returns the pickled results. Between items
 * the worker holds no GIL, so threads the user's code started go on. */
#include "python/module.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <drover/drover.h>

#define WAKE_BATCH 32 /* results of a map that wake the result handler */

/* One result for the result handler. */
struct note {
    unsigned long long job;
    size_t index; /* the chunk's position in its job */
    dv_item_result_t r;
};

/* Results the manager thread delivered and Python has not taken. */
struct notes {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct note *v;
    size_t n, cap;
    size_t reserved; /* results submitted and not yet delivered */
    int finished;    /* the pool joined: no result comes any more */
};

/* The callback's context, one per submission; freed by its last call. */
struct sub {
    struct notes *nb;
    unsigned long long job;
    size_t base;
    size_t left;
    int each; /* wake the result handler for each result, not the last */
};

typedef struct {
    PyObject_HEAD dv_pool_t *pool;
    struct notes *nb;
    int workers;
} PoolObject;

static PyTypeObject PoolType;

static void on_result(void *ctx, dv_async_t *a, size_t index)
{
    struct sub *s = ctx;
    struct note nt = {s->job, s->base + index, {0}};
    /* Only this callback takes results, so the one ready is index's. */
    if (dv_async_next(a, 0, &nt.r, NULL) < 0) {
        nt.r.index = index;
        snprintf(nt.r.reason, sizeof(nt.r.reason), "result lost");
    }
    nt.index = s->base + nt.r.index;
    struct notes *nb = s->nb;
    pthread_mutex_lock(&nb->mu);
    nb->v[nb->n++] = nt; /* room reserved by submit */
    nb->reserved--;
    /* A map's job is resolved once all its chunks are in: a wake-up
     * (a thread switch, the GIL) per batch of chunks, not per chunk; the
     * batches let the decoding overlap the work still running. */
    if (s->each || s->left == 1 || nb->n >= WAKE_BATCH)
        pthread_cond_broadcast(&nb->cv);
    pthread_mutex_unlock(&nb->mu);
    if (--s->left == 0)
        free(s);
}

/* Room for n more results; 0, or -1 (out of memory). */
static int reserve(struct notes *nb, size_t n)
{
    pthread_mutex_lock(&nb->mu);
    size_t want = nb->n + nb->reserved + n;
    if (want > nb->cap) {
        size_t cap = nb->cap ? nb->cap : 64;
        while (cap < want)
            cap *= 2;
        struct note *v = realloc(nb->v, cap * sizeof(*v));
        if (!v) {
            pthread_mutex_unlock(&nb->mu);
            return -1;
        }
        nb->v = v;
        nb->cap = cap;
    }
    nb->reserved += n;
    pthread_mutex_unlock(&nb->mu);
    return 0;
}

static void unreserve(struct notes *nb, size_t n)
{
    pthread_mutex_lock(&nb->mu);
    nb->reserved -= n;
    pthread_mutex_unlock(&nb->mu);
}

static struct notes *notes_new(void)
{
    struct notes *nb = calloc(1, sizeof(*nb));
    if (!nb)
        return NULL;
    pthread_mutex_init(&nb->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&nb->cv, &ca);
    pthread_condattr_destroy(&ca);
    return nb;
}

static void notes_free(struct notes *nb)
{
    if (!nb)
        return;
    for (size_t i = 0; i < nb->n; i++)
        dv_item_result_clear(&nb->v[i].r);
    free(nb->v);
    pthread_mutex_destroy(&nb->mu);
    pthread_cond_destroy(&nb->cv);
    free(nb);
}

/* Pool(workers, init, maxtasks): workers running the Python pool tasks;
 * init is what drover.pool._worker_init gets in each worker. */
static PyObject *pool_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)type;
    static char *names[] = {"workers", "init", "maxtasks", NULL};
    int workers;
    Py_buffer init;
    Py_ssize_t maxtasks = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iy*|n:Pool", names, &workers,
                                     &init, &maxtasks))
        return NULL;
    PoolObject *o = PyObject_New(PoolObject, &PoolType);
    if (!o) {
        PyBuffer_Release(&init);
        return NULL;
    }
    o->pool = NULL;
    o->workers = workers;
    o->nb = notes_new();
    if (!o->nb) {
        PyBuffer_Release(&init);
        Py_DECREF(o);
        return PyErr_NoMemory();
    }
    dv_pool_options_t opts = {.init_task = "dv_python_pool_init",
                              .init_data = init.buf,
                              .init_len = (size_t)init.len,
                              .max_items = maxtasks > 0 ? (size_t)maxtasks : 0};
    dv_error_t err = {{0}};
    dv_pool_t *p;
    Py_BEGIN_ALLOW_THREADS;
    p = dv_pool_create_ex(workers, &opts, &err);
    Py_END_ALLOW_THREADS;
    int e = errno;
    PyBuffer_Release(&init);
    if (!p) {
        Py_DECREF(o);
        return dv__py_raise(e, err.text);
    }
    o->pool = p;
    return (PyObject *)o;
}

/* Borrow the buffers of a list of bytes-like objects as items. */
static dv_item_t *items_of(PyObject *list, Py_buffer **views, size_t *n)
{
    Py_ssize_t len = PyList_Size(list);
    if (len < 0)
        return NULL;
    dv_item_t *items = calloc((size_t)len + 1, sizeof(*items));
    Py_buffer *v = calloc((size_t)len + 1, sizeof(*v));
    if (!items || !v) {
        free(items);
        free(v);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(list, i), &v[i], PyBUF_SIMPLE) <
            0) {
            while (i-- > 0)
                PyBuffer_Release(&v[i]);
            free(items);
            free(v);
            return NULL;
        }
        items[i] = (dv_item_t){v[i].buf, (size_t)v[i].len};
    }
    *views = v;
    *n = (size_t)len;
    return items;
}

/* submit(job, base, items, each=True): run the items (a list of bytes)
 * as chunks base, base + 1, ... of job; each result comes back from
 * results(), which returns at once for each (each) or once the last one
 * is there (it may return earlier, with others). */
static PyObject *pool_submit(PoolObject *self, PyObject *args)
{
    unsigned long long job;
    Py_ssize_t base;
    PyObject *list;
    int each = 1;
    if (!PyArg_ParseTuple(args, "KnO!|p:submit", &job, &base, &PyList_Type,
                          &list, &each))
        return NULL;
    Py_buffer *views = NULL;
    size_t n = 0;
    dv_item_t *items = items_of(list, &views, &n);
    if (!items)
        return NULL;
    struct sub *s = n ? malloc(sizeof(*s)) : NULL;
    if (n && (!s || reserve(self->nb, n) < 0)) {
        free(s);
        s = NULL;
    }
    dv_async_t *a = NULL;
    dv_error_t err = {{0}};
    int e = ENOMEM;
    if (s) {
        *s = (struct sub){self->nb, job, (size_t)base, n, each};
        dv_submit_options_t o = {
            .chunksize = 1, .on_result = on_result, .ctx = s};
        Py_BEGIN_ALLOW_THREADS;
        a = dv_pool_submit(self->pool, "dv_python_pool_item", items, n, &o,
                           &err);
        e = errno;
        Py_END_ALLOW_THREADS;
        if (!a) {
            unreserve(self->nb, n);
            free(s);
        }
    }
    for (size_t i = 0; i < n; i++)
        PyBuffer_Release(&views[i]);
    free(views);
    free(items);
    if (n && !a)
        return e == ENOMEM && !err.text[0] ? PyErr_NoMemory()
                                           : dv__py_raise(e, err.text);
    dv_async_destroy(&a); /* the callback takes every result */
    Py_RETURN_NONE;
}

static int results_try(void *ctx, double slice_s, dv_error_t *err)
{
    (void)err;
    struct notes *nb = ctx;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    long ns = (long)(slice_s * 1e9);
    dl.tv_sec += ns / 1000000000L;
    dl.tv_nsec += ns % 1000000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&nb->mu);
    while (!nb->n && !nb->finished)
        if (pthread_cond_timedwait(&nb->cv, &nb->mu, &dl) == ETIMEDOUT)
            break;
    int ready = nb->n || nb->finished;
    pthread_mutex_unlock(&nb->mu);
    if (ready)
        return 0;
    errno = ETIMEDOUT;
    return -1;
}

/* (job, index, ok, payload or reason, code): ok is the task's success;
 * else the worker died or the pool failed the item (reason says). */
static PyObject *note_tuple(struct note *nt)
{
    PyObject *payload =
        nt->r.ok ? PyBytes_FromStringAndSize(nt->r.data, (Py_ssize_t)nt->r.len)
                 : PyUnicode_DecodeUTF8(nt->r.reason, strlen(nt->r.reason),
                                        "replace");
    if (!payload)
        return NULL;
    return Py_BuildValue("KnNNi", nt->job, (Py_ssize_t)nt->index,
                         PyBool_FromLong(nt->r.ok), payload, nt->r.code);
}

/* results(timeout=None) -> list of note tuples ([] when the timeout
 * passed), or None once the pool was joined and every result taken. */
static PyObject *pool_results(PoolObject *self, PyObject *args)
{
    PyObject *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "|O:results", &t) ||
        dv__py_timeout(t, &timeout))
        return NULL;
    int r = dv__py_wait(timeout, results_try, self->nb);
    if (r < 0)
        return NULL;
    struct notes *nb = self->nb;
    pthread_mutex_lock(&nb->mu);
    size_t n = nb->n;
    struct note *v = n ? malloc(n * sizeof(*v)) : NULL;
    if (v) {
        memcpy(v, nb->v, n * sizeof(*v));
        nb->n = 0;
    }
    int done = nb->finished && !n;
    pthread_mutex_unlock(&nb->mu);
    if (done)
        Py_RETURN_NONE;
    if (n && !v)
        return PyErr_NoMemory();
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; i < n; i++) {
        PyObject *tup = list ? note_tuple(&v[i]) : NULL;
        dv_item_result_clear(&v[i].r);
        if (list && !tup)
            Py_CLEAR(list);
        if (list)
            PyList_SET_ITEM(list, (Py_ssize_t)i, tup);
    }
    free(v);
    return list;
}

static PyObject *pool_close(PoolObject *self, PyObject *unused)
{
    (void)unused;
    dv_pool_close(self->pool);
    Py_RETURN_NONE;
}

static PyObject *pool_terminate(PoolObject *self, PyObject *unused)
{
    (void)unused;
    Py_BEGIN_ALLOW_THREADS;
    dv_pool_terminate(self->pool);
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

static int join_try(void *ctx, double slice_s, dv_error_t *err)
{
    return dv_pool_join(ctx, slice_s, err);
}

/* join(timeout=None) -> True once the workers ended (after close or
 * terminate), False when the timeout passed. */
static PyObject *pool_join(PoolObject *self, PyObject *args)
{
    PyObject *t = Py_None;
    double timeout;
    if (!PyArg_ParseTuple(args, "|O:join", &t) || dv__py_timeout(t, &timeout))
        return NULL;
    int r = dv__py_wait(timeout, join_try, self->pool);
    if (r < 0)
        return NULL;
    if (r == 0) {
        pthread_mutex_lock(&self->nb->mu);
        self->nb->finished = 1;
        pthread_cond_broadcast(&self->nb->cv);
        pthread_mutex_unlock(&self->nb->mu);
    }
    return PyBool_FromLong(r == 0);
}

/* workers() -> list of pids per slot (0: none runs there now). */
static PyObject *pool_workers(PoolObject *self, PyObject *unused)
{
    (void)unused;
    int *pids = calloc((size_t)self->workers, sizeof(*pids));
    if (!pids)
        return PyErr_NoMemory();
    int n = dv_pool_workers(self->pool, pids, (size_t)self->workers);
    PyObject *list = PyList_New(n > 0 ? n : 0);
    for (int i = 0; list && i < n; i++) {
        PyObject *pid = PyLong_FromLong(pids[i]);
        if (!pid) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, pid);
    }
    free(pids);
    return list;
}

static void pool_dealloc(PoolObject *self)
{
    if (self->pool) {
        Py_BEGIN_ALLOW_THREADS;
        dv_pool_destroy(&self->pool); /* every callback has run after it */
        Py_END_ALLOW_THREADS;
    }
    notes_free(self->nb);
    PyObject_Free(self);
}

static PyMethodDef pool_methods[] = {
    {"submit", (PyCFunction)pool_submit, METH_VARARGS,
     "submit(job, base, items, each=True): run the pickled chunks."},
    {"results", (PyCFunction)pool_results, METH_VARARGS,
     "results(timeout=None) -> [(job, index, ok, payload, code)] or None "
     "once joined and drained."},
    {"close", (PyCFunction)pool_close, METH_NOARGS,
     "No more submissions; workers end once their work is done."},
    {"terminate", (PyCFunction)pool_terminate, METH_NOARGS,
     "Kill the workers; pending chunks fail with 'pool terminated'."},
    {"join", (PyCFunction)pool_join, METH_VARARGS,
     "join(timeout=None) -> bool: the workers ended."},
    {"workers", (PyCFunction)pool_workers, METH_NOARGS,
     "workers() -> [pid per slot, 0 while none runs there]."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PoolType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "drover._drover.Pool",
    .tp_basicsize = sizeof(PoolObject),
    .tp_dealloc = (destructor)pool_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Pool(workers, init, maxtasks=0): a libdrover pool running "
              "drover.pool's worker tasks.",
    .tp_methods = pool_methods,
    .tp_new = pool_new,
};

/* ---- the worker side ---- */

static PyObject *worker_run;     /* drover.pool._worker_run */
static PyThreadState *worker_ts; /* the worker's thread, between items */

/* Report the exception drover.pool's worker code did not handle. */
static int worker_failed(const char *what)
{
    fprintf(stderr, "drover: pool worker: %s:\n", what);
    PyErr_Print();
    fflush(stderr);
    return 1;
}

DV_TASK(dv_python_pool_init)(const void *arg, size_t len, dv_result_t *result)
{
    (void)result;
    dv__py_after_fork();
    PyObject *mod = PyImport_ImportModule("drover.pool");
    PyObject *r = mod ? PyObject_CallMethod(mod, "_worker_init", "y#",
                                            (const char *)arg, (Py_ssize_t)len)
                      : NULL;
    if (r)
        worker_run = PyObject_GetAttrString(mod, "_worker_run");
    Py_XDECREF(mod);
    int code = r && PyLong_Check(r) ? (int)PyLong_AsLong(r) : 1;
    Py_XDECREF(r);
    if (!worker_run)
        return worker_failed("cannot start");
    if (code == 0)
        worker_ts = PyEval_SaveThread();
    return code;
}

DV_TASK(dv_python_pool_item)(const void *arg, size_t len, dv_result_t *result)
{
    if (!worker_run || !worker_ts)
        return 70; /* the init task did not run */
    PyEval_RestoreThread(worker_ts);
    int code = 0;
    PyObject *r = PyObject_CallFunction(worker_run, "y#", (const char *)arg,
                                        (Py_ssize_t)len);
    Py_buffer v;
    if (!r || PyObject_GetBuffer(r, &v, PyBUF_SIMPLE) < 0) {
        code = worker_failed("cannot run an item");
    } else {
        if (dv_result_set(result, v.buf, (size_t)v.len) < 0)
            code = 71;
        PyBuffer_Release(&v);
    }
    Py_XDECREF(r);
    worker_ts = PyEval_SaveThread();
    return code;
}

int dv__py_pool_add_type(PyObject *m)
{
    if (PyType_Ready(&PoolType) < 0)
        return -1;
    Py_INCREF(&PoolType);
    if (PyModule_AddObject(m, "Pool", (PyObject *)&PoolType) < 0) {
        Py_DECREF(&PoolType);
        return -1;
    }
    return 0;
}
