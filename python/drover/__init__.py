"""drover for Python: multiprocessing's start method "drover".

Importing drover joins the job (or starts a private one-node job) and
registers the start method, so that

    import drover
    import multiprocessing as mp
    mp.set_start_method("drover")

runs multiprocessing.Process through libdrover's fork server. Import it
first, before other threads start: the fork server is a fork of the
interpreter as it is at that moment. See docs/PYTHON.md for what works.
"""

import sys

from drover import _drover
from drover.context import DroverContext, DroverProcess, NotSupportedError
from drover.nodes import (Node, Placement, current_node, current_placement,
                          nodes)
from drover import pool as _pool  # noqa: F401  (so the fork server has it)

__all__ = ["DroverContext", "DroverProcess", "NotSupportedError", "VERSION",
           "Node", "Placement", "current_node", "current_placement", "nodes"]

VERSION = _drover.VERSION

# Threads that run now are not in the main process of a private job (a
# fork) nor in any child.
_threading = sys.modules.get("threading")
if _threading is not None and _threading.active_count() > 1:
    import warnings
    warnings.warn("drover: imported with %d threads running: import drover "
                  "before starting threads (they do not reach the job's "
                  "processes)" % _threading.active_count(), RuntimeWarning,
                  stacklevel=2)

# Text buffered now would be written again by every child of the fork
# server, which starts from this state.
for _stream in (sys.stdout, sys.stderr):
    if _stream is not None:
        _stream.flush()

# Last: a child of the fork server resumes inside this call, with the
# package complete except for what follows it.
_drover._init()
