/* drover._drover's node table and placements: nodes() reads libdrover's
 * table (include/drover/node.h), and dv__py_placement() turns a
 * drover.Placement (its `_c` tuple) into a dv_placement_t for any call of
 * the extension that places something (a Process, a Pool's workers). */
#include "python/module.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <drover/drover.h>

/* nodes() -> [(index, hostname, address, cpus, gpus, uid), ...] */
PyObject *dv__py_nodes(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    int n = dv_node_count();
    if (n < 0)
        return dv__py_raise(ENOTCONN, "nodes: the runtime is not running");
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        dv_node_info_t ni;
        dv_error_t err = {{0}};
        if (dv_node_get(i, &ni, &err) < 0) {
            Py_DECREF(list);
            return dv__py_raise(errno, err.text);
        }
        PyObject *t =
            Py_BuildValue("(issiiK)", ni.index, ni.hostname, ni.address,
                          ni.cpus, ni.gpus, (unsigned long long)ni.uid);
        if (!t) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

/* getenv(name) -> str or None: the C environment, which a placement's GPU
 * changes in a forked child after os.environ was made. */
PyObject *dv__py_getenv(PyObject *self, PyObject *args)
{
    (void)self;
    const char *name;
    if (!PyArg_ParseTuple(args, "s:getenv", &name))
        return NULL;
    const char *v = getenv(name);
    if (!v)
        Py_RETURN_NONE;
    return PyUnicode_DecodeFSDefault(v);
}

int dv__py_placement(PyObject *obj, void *out)
{
    dv__py_placement_t *pl = out;
    pl->p = DV_PLACEMENT_DEFAULT;
    pl->host[0] = '\0';
    if (obj == Py_None)
        return 1;
    PyObject *c = PyObject_GetAttrString(obj, "_c");
    if (!c) {
        PyErr_Format(PyExc_TypeError,
                     "placement must be a drover.Placement or None, not %.80s",
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    int policy, node, gpu;
    PyObject *host;
    int ok = PyArg_ParseTuple(c, "iiOi;a Placement's _c", &policy, &node, &host,
                              &gpu);
    if (ok && host != Py_None) {
        const char *h = PyUnicode_Check(host) ? PyUnicode_AsUTF8(host) : NULL;
        if (!h || strlen(h) >= sizeof(pl->host)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "placement: not a host name");
            ok = 0;
        } else {
            strcpy(pl->host, h);
            pl->p.host = pl->host;
        }
    }
    Py_DECREF(c);
    if (!ok)
        return 0;
    if (policy < DV_POLICY_DEFAULT || policy > DV_POLICY_LOCAL) {
        PyErr_Format(PyExc_ValueError, "placement: unknown policy %d", policy);
        return 0;
    }
    pl->p.policy = (dv_policy_t)policy;
    pl->p.node = node;
    pl->p.gpu = gpu;
    return 1;
}

int dv__py_node_add(PyObject *m)
{
    static const struct {
        const char *name;
        int value;
    } k[] = {
        {"POLICY_DEFAULT", DV_POLICY_DEFAULT},
        {"POLICY_ROUND_ROBIN", DV_POLICY_ROUND_ROBIN},
        {"POLICY_BLOCK", DV_POLICY_BLOCK},
        {"POLICY_NODE", DV_POLICY_NODE},
        {"POLICY_HOST", DV_POLICY_HOST},
        {"POLICY_LOCAL", DV_POLICY_LOCAL},
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(*k); i++)
        if (PyModule_AddIntConstant(m, k[i].name, k[i].value) < 0)
            return -1;
    return 0;
}
