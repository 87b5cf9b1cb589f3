/* drover._drover: what the extension's files share (never installed). */
#ifndef DROVER_PYTHON_MODULE_H
#define DROVER_PYTHON_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Raise OSError(e, text) (a subclass by errno, as os does); returns NULL. */
PyObject *dv__py_raise(int e, const char *text);

/* _drover.start(data): start the Python process task on a copy of data. */
PyObject *dv__py_process_start(PyObject *self, PyObject *args);

/* Add the Process type to module m. Returns 0, or -1 with an exception. */
int dv__py_process_add_type(PyObject *m);

#endif
