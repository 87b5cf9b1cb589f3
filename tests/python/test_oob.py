"""The "drover" start method: large buffers (NumPy arrays, bytearrays)
through drover queues and pipes with one copy per hop (pickle protocol 5,
out-of-band buffers): a put copies the array's bytes once, into the
queue, and a get gives an array over the one copy it made out of it.

Run by CTest with PYTHONPATH=<build>/python; exits 77 (skipped) when
drover or numpy cannot be imported."""

import sys

try:
    import drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)
try:
    import numpy
except ImportError:
    print("skipped: numpy is not importable (Debian: python3-numpy)")
    sys.exit(77)

import multiprocessing
import unittest

from drover import _drover
from drover.queues import dumps_parts, loads_buffer

ctx = multiprocessing.get_context("drover")
LONG = 60
MiB = 1 << 20


def echo(qin, qout):
    while True:
        obj = qin.get(timeout=LONG)
        if obj is None:
            break
        qout.put(obj)


def message_of(arr):
    """The object whose memory arr views, past ndarrays and memoryviews."""
    obj = arr
    while isinstance(obj, (numpy.ndarray, memoryview)):
        obj = obj.base if isinstance(obj, numpy.ndarray) else obj.obj
    return obj


class TestParts(unittest.TestCase):
    def test_array_is_a_part_not_in_the_pickle(self):
        a = numpy.arange(MiB, dtype=numpy.float64)  # 8 MiB
        parts = dumps_parts(a)
        big = [p for p in parts if memoryview(p).nbytes >= a.nbytes]
        self.assertEqual(len(big), 1)
        self.assertTrue(numpy.shares_memory(
            numpy.frombuffer(big[0], numpy.uint8), a))
        rest = sum(memoryview(p).nbytes for p in parts) - a.nbytes
        self.assertLess(rest, 1024)
        b = loads_buffer(b"".join(bytes(p) for p in parts))
        self.assertTrue(numpy.array_equal(a, b))

    def test_small_and_strided_stay_in_band(self):
        for a in (numpy.arange(10), numpy.arange(4 * MiB)[::2],
                  numpy.array(["x", 1], dtype=object)):
            parts = dumps_parts(a)
            self.assertEqual(len(parts), 1)
            b = loads_buffer(bytes(parts[0]))
            self.assertTrue(numpy.array_equal(a, b))

    def test_corrupt_messages_raise(self):
        for junk in (b"DVOB", b"DVOB\x01\0\0\0", b"DVOB" + bytes(12) + b"x",
                     b"DVOB\x01\0\0\0" + bytes(8) + b"\xff" * 8):
            with self.assertRaises((ValueError, EOFError)):
                loads_buffer(junk)


class TestThroughQueues(unittest.TestCase):
    def test_get_gives_a_view_of_the_one_copy(self):
        a = numpy.arange(MiB, dtype=numpy.float64)
        q = ctx.Queue()
        q.put(a)
        a[0] = -1  # the put copied: the message keeps the old value
        b = q.get()
        self.assertEqual(b[0], 0)
        self.assertTrue(numpy.array_equal(a[1:], b[1:]))
        self.assertTrue(b.flags.writeable)
        msg = message_of(b)
        self.assertIsInstance(msg, _drover.Buffer)
        self.assertLess(len(msg), a.nbytes + 1024)
        b[1] = 5  # writable, in this process's copy only

    def test_layouts_and_dtypes(self):
        q = ctx.Queue()
        arrays = [
            numpy.asfortranarray(numpy.arange(MiB).reshape(1024, 1024)),
            numpy.zeros((0, 3)),
            numpy.ones(3 * MiB, dtype=numpy.uint8)[MiB:2 * MiB],
            numpy.zeros(MiB, dtype=[("a", "i4"), ("b", "f8")]),
            numpy.arange(2 * MiB)[::3],
        ]
        for a in arrays:
            q.put(a)
        for a in arrays:
            b = q.get()
            self.assertEqual(b.dtype, a.dtype)
            self.assertEqual(b.shape, a.shape)
            self.assertTrue(numpy.array_equal(a, b))
        self.assertTrue(q.empty())

    def test_several_arrays_and_bytearray_in_one_object(self):
        obj = {"x": numpy.arange(MiB), "y": bytearray(b"z" * MiB),
               "z": [numpy.ones(MiB // 2, dtype=numpy.int16), "tail"]}
        q = ctx.Queue()
        q.put(obj)
        got = q.get()
        self.assertTrue(numpy.array_equal(got["x"], obj["x"]))
        self.assertEqual(got["y"], obj["y"])
        self.assertTrue(numpy.array_equal(got["z"][0], obj["z"][0]))
        self.assertEqual(got["z"][1], "tail")

    def test_through_a_child_and_back(self):
        a = numpy.random.default_rng(1).random((1024, 1024))  # 8 MiB
        qin, qout = ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=echo, args=(qin, qout))
        p.start()
        qin.put(a)
        b = qout.get(timeout=LONG)
        qin.put(None)
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)
        self.assertTrue(numpy.array_equal(a, b))
        self.assertIsInstance(message_of(b), _drover.Buffer)

    def test_joinable_and_simple_queues_and_pipes(self):
        a = numpy.arange(MiB, dtype=numpy.int64)
        for q in (ctx.JoinableQueue(), ctx.SimpleQueue()):
            q.put(a)
            self.assertTrue(numpy.array_equal(q.get(), a))
        r, w = ctx.Pipe(duplex=False)
        w.send(a)
        b = r.recv()
        self.assertTrue(numpy.array_equal(a, b))
        self.assertIsInstance(message_of(b), _drover.Buffer)

    def test_over_the_message_limit(self):
        big = numpy.zeros(_drover.MESSAGE_MAX + 1, dtype=numpy.uint8)
        q = ctx.Queue()
        with self.assertRaises(OSError):
            q.put(big)
        self.assertTrue(q.empty())


if __name__ == "__main__":
    unittest.main()
