"""Synchronization objects of the "drover" start method, over libdrover.

Lock, RLock, Semaphore and BoundedSemaphore are multiprocessing's classes
over a drover._drover.SemLock (a libdrover semaphore with the interface
of _multiprocessing.SemLock); Condition is multiprocessing's, built from
these; Event and Barrier sit on libdrover's events and barriers. Each
works across nodes: an object passed to a drover Process travels as its
libdrover handle and is attached again in the child (on another node, as
a relay to the object's node).
"""

import threading
import time
from multiprocessing import synchronize as _mp

from drover import _drover
from drover.context import _pass_to_child

__all__ = ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition",
           "Event", "Barrier"]

RECURSIVE_MUTEX, SEMAPHORE = 0, 1
SEM_VALUE_MAX = _drover.SemLock.SEM_VALUE_MAX


class SemLock:
    """multiprocessing.synchronize.SemLock over a libdrover semaphore."""

    def __init__(self, kind, value, maxvalue, *, ctx=None):
        self._semlock = _drover.SemLock(kind, value, maxvalue)
        self._make_methods()

    def _make_methods(self):
        self.acquire = self._semlock.acquire
        self.release = self._semlock.release

    def __enter__(self):
        return self._semlock.__enter__()

    def __exit__(self, *args):
        return self._semlock.__exit__(*args)

    def __getstate__(self):
        _pass_to_child(self)
        sl = self._semlock
        return (sl.handle(), sl.kind, sl.maxvalue)

    def __setstate__(self, state):
        self._semlock = _drover.SemLock.attach(*state)
        self._make_methods()


class Semaphore(SemLock):
    def __init__(self, value=1, *, ctx=None):
        SemLock.__init__(self, SEMAPHORE, value, SEM_VALUE_MAX)

    get_value = _mp.Semaphore.get_value
    __repr__ = _mp.Semaphore.__repr__


class BoundedSemaphore(Semaphore):
    def __init__(self, value=1, *, ctx=None):
        SemLock.__init__(self, SEMAPHORE, value, value)

    __repr__ = _mp.BoundedSemaphore.__repr__


class Lock(SemLock):
    def __init__(self, *, ctx=None):
        SemLock.__init__(self, SEMAPHORE, 1, 1)

    __repr__ = _mp.Lock.__repr__


class RLock(SemLock):
    def __init__(self, *, ctx=None):
        SemLock.__init__(self, RECURSIVE_MUTEX, 1, 1)

    __repr__ = _mp.RLock.__repr__


class Condition(_mp.Condition):
    """multiprocessing.Condition, of drover's RLock and Semaphores."""


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


def _broken(fn, *args):
    try:
        return fn(*args)
    except (BrokenPipeError, TimeoutError):
        raise threading.BrokenBarrierError from None


class Barrier(threading.Barrier):
    """threading.Barrier's interface over a libdrover barrier. The action,
    if any, runs in the process whose wait() completes the barrier, before
    the others go on."""

    def __init__(self, parties, action=None, timeout=None, *, ctx=None):
        self._b = _drover.Barrier(parties)
        self._parties = parties
        self._action = action
        self._timeout = timeout

    def __getstate__(self):
        _pass_to_child(self)
        return (self._parties, self._action, self._timeout, self._b.handle())

    def __setstate__(self, state):
        self._parties, self._action, self._timeout, handle = state
        self._b = _drover.Barrier.attach(handle)

    def wait(self, timeout=None):
        if timeout is None:
            timeout = self._timeout
        end = None if timeout is None else time.monotonic() + max(timeout, 0)
        hold = self._action is not None
        index, gen = _broken(self._b.arrive, hold)
        if index == self._parties - 1:
            if hold:
                try:
                    self._action()
                except BaseException:
                    self._b.abort()
                    raise
                _broken(self._b.pass_, gen, index)
            return index
        while True:
            left = None if end is None else max(end - time.monotonic(), 0)
            if _broken(self._b.await_, gen, index, left):
                return index
            try:
                if _broken(self._b.give_up, gen, index):
                    return index
            except BlockingIOError:
                end = None  # held: its last arrival runs the action

    def reset(self):
        self._b.reset()

    def abort(self):
        self._b.abort()

    @property
    def parties(self):
        return self._parties

    @property
    def n_waiting(self):
        return self._b.n_waiting()

    @property
    def broken(self):
        return self._b.broken()

    def __repr__(self):
        return "<%s.%s object at %#x: waiters=%d/%d, broken=%s>" % (
            self.__class__.__module__, self.__class__.__qualname__, id(self),
            self.n_waiting, self.parties, self.broken)
