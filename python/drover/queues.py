"""Queue of the "drover" start method, over libdrover's queues.

A put pickles the object (ForkingPickler, protocol 5) and copies it into
the queue's shared memory before it returns: there is no feeder thread,
so join_thread() has nothing to wait for and cancel_join_thread() nothing
to cancel. A Queue passed to a drover Process travels as its libdrover
handle and is attached again in the child.
"""

from multiprocessing import reduction
from queue import Empty, Full

from drover import _drover
from drover.context import _pass_to_child

__all__ = ["Queue", "Empty", "Full"]

_ForkingPickler = reduction.ForkingPickler


class Queue:
    """multiprocessing.Queue's interface over a libdrover queue."""

    def __init__(self, maxsize=0, *, ctx=None):
        self._maxsize = maxsize if maxsize > 0 else 0
        self._q = _drover.Queue(self._maxsize)
        self._closed = False

    def __getstate__(self):
        _pass_to_child(self)
        return (self._maxsize, self._q.handle())

    def __setstate__(self, state):
        self._maxsize, handle = state
        self._q = _drover.Queue.attach(handle)
        self._closed = False

    def _check_closed(self):
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")

    def put(self, obj, block=True, timeout=None):
        self._check_closed()
        data = _ForkingPickler.dumps(obj, 5)
        self._q.put(data, timeout if block else 0)

    def get(self, block=True, timeout=None):
        self._check_closed()
        return _ForkingPickler.loads(self._q.get(timeout if block else 0))

    def put_nowait(self, obj):
        return self.put(obj, False)

    def get_nowait(self):
        return self.get(False)

    def qsize(self):
        return self._q.size()

    def empty(self):
        return self._q.size() == 0

    def full(self):
        return self._maxsize > 0 and self._q.size() >= self._maxsize

    def close(self):
        # As multiprocessing's: this process puts and gets no more; the
        # queue stays usable by the others (the creator's object removes
        # it when it goes).
        self._closed = True

    def join_thread(self):
        assert self._closed, "Queue {0!r} not closed".format(self)

    def cancel_join_thread(self):
        pass
