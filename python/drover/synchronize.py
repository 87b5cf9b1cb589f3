"""Event of the "drover" start method, over libdrover's events.

An Event passed to a drover Process travels as its libdrover handle and
is attached again in the child.
"""

from drover import _drover
from drover.context import _pass_to_child

__all__ = ["Event"]


class Event:
    """multiprocessing.Event's interface over a libdrover event."""

    def __init__(self, *, ctx=None):
        self._e = _drover.Event()

    def __getstate__(self):
        _pass_to_child(self)
        return self._e.handle()

    def __setstate__(self, handle):
        self._e = _drover.Event.attach(handle)

    def is_set(self):
        return self._e.is_set()

    def set(self):
        self._e.set()

    def clear(self):
        self._e.clear()

    def wait(self, timeout=None):
        return self._e.wait(timeout)

    def __repr__(self):
        set_status = "set" if self.is_set() else "unset"
        return f"<{type(self).__qualname__} at {id(self):#x} {set_status}>"
