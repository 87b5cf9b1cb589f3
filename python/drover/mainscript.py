"""The main script, compiled once for all the job's processes.

A child runs the main script again as __mp_main__, as spawn does
(spawn.prepare -> runpy.run_path), and compiling it is most of the cost
of starting a process (about 1 ms for a 150-line script). The parent
compiles it once per version of the file (path, mtime, size) and sends
the marshalled code with each process; the child runs that code object,
as run_path would have after compiling the same file, where its
interpreter reads the same marshal format (else it compiles, as spawn).
"""

import contextlib
import importlib.util
import io
import marshal
import os
import pkgutil
import runpy

_KEY = "drover_main_code"
_cached = (None, None)  # (path, mtime_ns, size), marshalled code


def _compile(path):
    # As runpy._get_code_from_file: a compiled file, else source.
    with io.open_code(path) as f:
        code = pkgutil.read_code(f)
    if code is None:
        with io.open_code(path) as f:
            code = compile(f.read(), path, "exec")
    return code


def add_code(prep):
    """In the parent: add the compiled main script to preparation data
    that runs it from a path (nothing when it cannot be read)."""
    global _cached
    path = prep.get("init_main_from_path")
    if path is None:
        return
    try:
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if _cached[0] != key:
            _cached = (key, marshal.dumps(_compile(path)))
    except (OSError, SyntaxError, ValueError):
        return  # the child reports it, as spawn's would
    prep[_KEY] = (importlib.util.MAGIC_NUMBER, path, _cached[1])


@contextlib.contextmanager
def use_code(prep):
    """In the child, around spawn.prepare(prep): run_path takes the code
    sent with prep for that path instead of compiling the file."""
    sent = prep.pop(_KEY, None)
    original = runpy._get_code_from_file
    if sent is None or sent[0] != importlib.util.MAGIC_NUMBER:
        yield
        return
    path, code = sent[1], marshal.loads(sent[2])

    def get_code(*args):
        # (run_name, fname) -> (code, fname) up to 3.11; (fname) -> code.
        if os.path.abspath(os.fsdecode(args[-1])) != path:
            return original(*args)
        return (code, args[-1]) if len(args) == 2 else code

    runpy._get_code_from_file = get_code
    try:
        yield
    finally:
        runpy._get_code_from_file = original
