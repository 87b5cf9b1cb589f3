"""Queue, JoinableQueue and SimpleQueue of the "drover" start method, over
libdrover's queues.

A put pickles the object (ForkingPickler, protocol 5) and copies it into
the queue's shared memory before it returns: there is no feeder thread,
so join_thread() has nothing to wait for and cancel_join_thread() nothing
to cancel. Large buffers (NumPy arrays and other objects that pickle
protocol 5 serialises out of band) are not copied into the pickle: the
message is a small header, the pickle and the buffers, each copied once
into the queue (dumps_parts), and a get copies the message out once and
unpickles the buffers as views of that copy (loads_buffer). A queue
passed to a drover Process travels as its libdrover handle and is
attached again in the child.
"""

import errno
import io
import pickle
import struct
from multiprocessing import reduction
from queue import Empty, Full

from drover import _drover
from drover.context import _pass_to_child

__all__ = ["Queue", "JoinableQueue", "SimpleQueue", "Empty", "Full"]

_ForkingPickler = reduction.ForkingPickler

# A message with out-of-band buffers: MAGIC, u32 count, u64 pickle length,
# u64 length of each buffer; then the pickle and the buffers, each buffer
# starting at a multiple of _ALIGN in the message. A message without
# buffers is the plain pickle (it starts with the PROTO opcode, 0x80).
_MAGIC = b"DVOB"
_ALIGN = 64
_OOB_MIN = 4096  # smaller buffers stay in the pickle


class _Pickler(_ForkingPickler):
    """ForkingPickler (its reducers) with a buffer_callback, which its
    __init__ does not pass on."""

    def __init__(self, file, buffer_callback):
        pickle.Pickler.__init__(self, file, 5,
                                buffer_callback=buffer_callback)
        self.dispatch_table = self._copyreg_dispatch_table.copy()
        self.dispatch_table.update(self._extra_reducers)


def _pad(n):
    return -n % _ALIGN


def dumps_parts(obj):
    """obj as a list of buffers that make one message together."""
    bufs = []

    def keep(pb):
        try:
            raw = pb.raw()  # BufferError when not contiguous: in band
        except BufferError:
            return True
        if raw.nbytes < _OOB_MIN:
            return True
        bufs.append(raw)
        return False

    f = io.BytesIO()
    _Pickler(f, keep).dump(obj)
    data = f.getbuffer()
    if not bufs:
        return [data]
    head = _MAGIC + struct.pack("<IQ%dQ" % len(bufs), len(bufs), len(data),
                                *(b.nbytes for b in bufs))
    parts = [head, data]
    at = len(head) + len(data)
    for b in bufs:
        parts.append(bytes(_pad(at)))
        at += _pad(at)
        parts.append(b)
        at += b.nbytes
    return parts


def loads_buffer(buf):
    """The object of a message made by dumps_parts (any bytes-like object;
    the buffers unpickle as views of it)."""
    mv = memoryview(buf)
    if mv[:4] != _MAGIC:
        return _ForkingPickler.loads(mv)
    try:
        count, plen = struct.unpack_from("<IQ", mv, 4)
        lens = struct.unpack_from("<%dQ" % count, mv, 16)
    except struct.error:
        raise ValueError("drover: truncated message header") from None
    at = 16 + 8 * count
    data = mv[at:at + plen]
    at += plen
    views = []
    for n in lens:
        at += _pad(at)
        views.append(mv[at:at + n])
        at += n
    if at > mv.nbytes:
        raise ValueError("drover: truncated message")
    return _ForkingPickler.loads(data, buffers=views)


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
        self._q.put_parts(dumps_parts(obj), timeout if block else 0)

    def get(self, block=True, timeout=None):
        self._check_closed()
        return loads_buffer(self._q.get_buffer(timeout if block else 0))

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


class JoinableQueue(Queue):
    """multiprocessing.JoinableQueue: the count of unfinished messages is
    the libdrover queue's (every put adds one, in any process or node)."""

    def task_done(self):
        self._check_closed()
        try:
            self._q.task_done()
        except OSError as e:
            if e.errno == errno.ERANGE:
                raise ValueError("task_done() called too many times") \
                    from None
            raise

    def join(self, timeout=None):
        """Wait until every message put was taken and marked done (the
        timeout, a drover addition, returns False when it passes)."""
        self._check_closed()
        return self._q.join(timeout)


class SimpleQueue:
    """multiprocessing.SimpleQueue: the reader and writer Connections of a
    one-way drover Pipe (over one libdrover queue, which orders and
    separates messages itself: no locks)."""

    def __init__(self, *, ctx=None):
        from drover.connection import Pipe
        self._reader, self._writer = Pipe(duplex=False)

    def __getstate__(self):
        _pass_to_child(self)
        return (self._reader, self._writer)

    def __setstate__(self, state):
        self._reader, self._writer = state

    def empty(self):
        return not self._reader.poll()

    def get(self):
        return self._reader.recv()

    def put(self, obj):
        self._writer.send(obj)

    def close(self):
        self._reader.close()
        self._writer.close()
