"""Pipe and Connection of the "drover" start method, over libdrover
queues, so that both ends work on any node of the job.

Each direction of a pipe is one queue: an end reads one and writes the
other (a one-way pipe has one queue, read by one end, written by the
other). An end holds the queue it writes (dv_queue_hold): every process
that has the end, in the arguments of a drover Process, holds it once
more, and lets go when it closes the end, when the end is garbage
collected or when the process exits normally (not when it is killed or
leaves with os._exit); the last to let go closes
the queue, so that the reader, once it drained what is left, gets
EOFError. Messages are the queues' own (no length prefix, no locks: a
queue keeps messages whole and apart with any number of readers and
writers). send() pickles as drover's Queue does (large buffers out of
band, copied once in and once out).

fileno() is a pipe of this process that a watcher thread makes readable
while a message (or the end of file) waits, so that
multiprocessing.connection.wait() works with these connections.
"""

import atexit
import os
import threading
import weakref
from multiprocessing.connection import BufferTooShort

from drover import _drover
from drover import context
from drover.context import _pass_to_child
from drover.queues import dumps_parts, loads_buffer

__all__ = ["Connection", "Pipe"]

_SLICE = 0.2  # a watcher's longest wait before it looks at closed again


# The ends this process has open: closed when it exits normally (the end
# of a drover Process's target, or the interpreter's).
_open_ends = weakref.WeakSet()


def _close_all():
    for end in list(_open_ends):
        end.close()


atexit.register(_close_all)
context._exit_hooks.append(_close_all)


def _release(q):
    try:
        q.release()
    except OSError:
        pass  # the queue is gone (its creator removed it)


class Connection:
    """multiprocessing.connection.Connection's interface over queues."""

    def __init__(self, rq, wq):
        self._rq = rq  # _drover.Queue read, or None (write-only)
        self._wq = wq  # _drover.Queue written and held, or None
        self._closed = False
        self._watch = None
        _open_ends.add(self)

    # -- passing to a process --

    def __getstate__(self):
        self._check_closed()
        # The queues are kept for the child, not this end: dropping it
        # lets go of it at once, as closing it does.
        _pass_to_child(self, undo=self._unpass, keep=(self._rq, self._wq))
        if self._wq is not None:
            self._wq.hold()  # the child's; it lets go as this end does
        return (self._rq.handle() if self._rq is not None else None,
                self._wq.handle() if self._wq is not None else None)

    def _unpass(self):
        """The process this end was pickled for did not start."""
        if self._wq is not None:
            _release(self._wq)

    def __setstate__(self, state):
        rh, wh = state
        rq = _drover.Queue.attach(rh) if rh is not None else None
        wq = _drover.Queue.attach(wh) if wh is not None else None
        self.__init__(rq, wq)

    # -- state --

    def _check_closed(self):
        if self._closed:
            raise OSError("handle is closed")

    def _check_readable(self):
        if self._rq is None:
            raise OSError("connection is write-only")

    def _check_writable(self):
        if self._wq is None:
            raise OSError("connection is read-only")

    @property
    def closed(self):
        """True if the connection is closed"""
        return self._closed

    @property
    def readable(self):
        """True if the connection is readable"""
        return self._rq is not None

    @property
    def writable(self):
        """True if the connection is writable"""
        return self._wq is not None

    def close(self):
        """Close the connection (for this process; the other end sees the
        end of file once every process that has this end closed it)."""
        if self._closed:
            return
        self._closed = True
        _open_ends.discard(self)
        if self._watch is not None:
            self._watch.stop()
        if self._wq is not None:
            _release(self._wq)

    def __del__(self):
        if not getattr(self, "_closed", True):
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        self.close()

    # -- sending --

    def send_bytes(self, buf, offset=0, size=None):
        """Send the bytes data from a bytes-like object"""
        self._check_closed()
        self._check_writable()
        m = memoryview(buf)
        if m.itemsize > 1:
            m = m.cast("B")
        n = m.nbytes
        if offset < 0:
            raise ValueError("offset is negative")
        if n < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = n - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > n:
            raise ValueError("buffer length < offset + size")
        self._put([m[offset:offset + size]])

    def send(self, obj):
        """Send a (picklable) object"""
        self._check_closed()
        self._check_writable()
        self._put(dumps_parts(obj))

    def _put(self, parts):
        try:
            self._wq.put_parts(parts)
        except BrokenPipeError:
            raise BrokenPipeError("drover: the pipe was closed") from None

    # -- receiving --

    def _take(self):
        """The next message as a Buffer; EOFError once closed and empty."""
        self._check_closed()
        self._check_readable()
        try:
            buf = self._rq.get_buffer()
        except BrokenPipeError:
            raise EOFError from None
        finally:
            if self._watch is not None:
                self._watch.taken()
        return buf

    def recv_bytes(self, maxlength=None):
        """Receive bytes data as a bytes object."""
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        buf = self._take()
        if maxlength is not None and len(buf) > maxlength:
            self.close()
            raise OSError("bad message length")
        return bytes(buf)

    def recv_bytes_into(self, buf, offset=0):
        """Receive bytes data into a writeable bytes-like object.
        Return the number of bytes read."""
        with memoryview(buf) as m:
            itemsize = m.itemsize
            bytesize = itemsize * len(m)
            if offset < 0:
                raise ValueError("negative offset")
            elif offset > bytesize:
                raise ValueError("offset too large")
            data = self._take()
            n = len(data)
            if bytesize - offset < n:
                raise BufferTooShort(bytes(data))
            m.cast("B")[offset:offset + n] = memoryview(data)
            return n

    def recv(self):
        """Receive a (picklable) object"""
        return loads_buffer(self._take())

    def poll(self, timeout=0.0):
        """Whether there is any input available to be read (or the end of
        file), waiting up to timeout seconds (None: for ever)."""
        self._check_closed()
        self._check_readable()
        return self._rq.wait(timeout)

    def fileno(self):
        """A file descriptor readable while poll() would return True
        (for multiprocessing.connection.wait)."""
        self._check_closed()
        self._check_readable()
        if self._watch is None:
            self._watch = _Watch(self._rq)
        return self._watch.fd


class _Watch:
    """A pipe of this process made readable (one byte in it) while a get
    from rq would not wait, by a daemon thread that waits on rq."""

    def __init__(self, rq):
        self._rq = rq
        self.fd, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._rearm = threading.Event()
        self._signalled = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="drover-connection-watch")
        self._thread.start()

    def _run(self):
        try:
            while not self._stopped:
                if self._signalled:
                    self._rearm.wait(_SLICE)
                    self._rearm.clear()
                elif self._rq.wait(_SLICE):
                    with self._lock:
                        # Looked at again under the lock: a take between
                        # the wait and here must not leave a stale byte.
                        if (not self._stopped and not self._signalled and
                                self._rq.wait(0)):
                            os.write(self._w, b"x")
                            self._signalled = True
        except OSError:
            pass  # the queue is gone
        finally:
            with self._lock:
                self._stopped = True
                os.close(self._w)
                os.close(self.fd)

    def taken(self):
        """A message was taken: readable again only if more wait."""
        with self._lock:
            if self._signalled and not self._stopped:
                try:
                    os.read(self.fd, 1)
                except BlockingIOError:
                    pass
                self._signalled = False
        self._rearm.set()

    def stop(self):
        self._stopped = True
        self._rearm.set()


def Pipe(duplex=True):
    """Returns two connection objects connected by a pipe (over libdrover
    queues, usable on any node of the job)."""
    if duplex:
        q1, q2 = _drover.Queue(0), _drover.Queue(0)
        q1.hold()
        q2.hold()
        return Connection(q2, q1), Connection(q1, q2)
    q = _drover.Queue(0)
    q.hold()
    return Connection(q, None), Connection(None, q)
