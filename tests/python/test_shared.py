"""The "drover" start method: Value, Array, RawValue and RawArray
(drover.sharedctypes over libdrover's shared memory blocks), in one
process and across drover Processes, and the proxies a process of another
node gets (checked here over blocks of this node against the ctypes
objects they stand for).

Run by CTest with the interpreter the extension was built for and
PYTHONPATH=<build>/python; exits 77 (skipped) when drover cannot be
imported."""

import sys

try:
    import drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)

import ctypes
import errno
import multiprocessing
import pickle
import unittest
from multiprocessing import sharedctypes as mp_sharedctypes

from drover import _drover
from drover import sharedctypes as dsc

try:
    import numpy
except ImportError:
    numpy = None

ctx = multiprocessing.get_context("drover")


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_double)]


def run(target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    p.join(60)
    return p.exitcode


def set_values(values, new):
    for v, n in zip(values, new):
        v.value = n


def double_items(arr):
    for i in range(len(arr)):
        arr[i] *= 2


def set_text(chars, wide):
    chars.value = b"from child"
    wide.value = "\u00e9t\u00e9"


def move_point(pt):
    pt.x += 1
    pt.y = -pt.y


def through_proxy(arr, chars):
    # What a process of another node gets, over the same bytes.
    p = dsc._proxy(type(arr), arr._wrapper)
    p[0] = 1000
    p[2:4] = [7, 8]
    c = dsc._proxy(type(chars), chars._wrapper)
    c.raw = b"proxied"


def from_queue(q):
    arr = q.get(timeout=60)
    arr[1] = -1


def add_many(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


class TestRaw(unittest.TestCase):
    codes = [("i", 4343, 24234), ("d", 3.625, -4.25), ("h", -232, 234),
             ("q", 2 ** 33, 2 ** 34), ("c", b"x", b"y"), ("B", 0, 255),
             ("f", 0.5, 1.5)]

    def test_value_types_and_a_child(self):
        values = [ctx.RawValue(c, v) for c, v, _ in self.codes]
        for v, (c, init, _) in zip(values, self.codes):
            self.assertIsInstance(v, mp_sharedctypes.typecode_to_type[c])
            self.assertEqual(v.value, init)
        self.assertEqual(run(set_values, values, [n for *_, n in self.codes]),
                         0)
        for v, (_, _, new) in zip(values, self.codes):
            self.assertEqual(v.value, new)

    def test_zeroed_and_ctypes_types(self):
        self.assertEqual(ctx.RawValue("i").value, 0)
        self.assertEqual(ctx.RawValue(ctypes.c_double).value, 0.0)
        arr = ctx.RawArray("i", 1000)
        self.assertEqual(len(arr), 1000)
        self.assertEqual(list(arr), [0] * 1000)
        self.assertEqual(len(ctx.RawArray("i", 0)), 0)

    def test_array_in_a_child(self):
        seq = [680, 626, 934, 821, 150]
        arr = ctx.RawArray("i", seq)
        self.assertEqual(arr[1:3], seq[1:3])
        self.assertEqual(run(double_items, arr), 0)
        self.assertEqual(list(arr), [2 * x for x in seq])

    def test_text_arrays(self):
        chars = ctx.RawArray("c", 16)
        wide = ctx.RawArray("u", 8)
        self.assertEqual(chars.raw, b"\0" * 16)
        self.assertEqual(run(set_text, chars, wide), 0)
        self.assertEqual(chars.value, b"from child")
        self.assertEqual(wide.value, "\u00e9t\u00e9")

    def test_structure(self):
        pt = ctx.RawValue(Point, 3, 2.5)
        self.assertEqual((pt.x, pt.y), (3, 2.5))
        self.assertEqual(run(move_point, pt), 0)
        self.assertEqual((pt.x, pt.y), (4, -2.5))

    def test_creator_drops_it_at_once(self):
        arr = ctx.RawArray("i", [1, 2, 3])
        p = ctx.Process(target=double_items, args=(arr,))
        p.start()
        wrapper = arr._wrapper
        del arr
        p.join(60)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(wrapper.read(0, 12), bytes((ctypes.c_int * 3)(2, 4, 6)))

    @unittest.skipIf(numpy is None, "numpy is not installed")
    def test_numpy_view(self):
        arr = ctx.RawArray("d", 4)
        view = numpy.frombuffer(arr, dtype=numpy.float64)
        view[:] = [1, 2, 3, 4]
        self.assertEqual(list(arr), [1.0, 2.0, 3.0, 4.0])

    def test_travels_only_to_drover_processes(self):
        v = ctx.RawValue("i", 1)
        with self.assertRaises(RuntimeError):
            pickle.dumps(v)
        p = multiprocessing.get_context("spawn").Process(target=move_point,
                                                         args=(v,))
        with self.assertRaises(TypeError):
            p.start()

    def test_block_bounds(self):
        s = _drover.Shared(10)
        self.assertTrue(s.mapped())
        self.assertEqual(s.size(), 10)
        with self.assertRaises(OSError) as cm:
            s.read(5, 6)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertIn("outside the block of 10 bytes", str(cm.exception))
        with self.assertRaises(OSError):
            s.write(9, b"ab")
        self.assertEqual(s.read(0, 10), b"\0" * 10)
        with self.assertRaises(ValueError):
            s.read(-1, 2)
        with self.assertRaises(ValueError):
            _drover.Shared(-1)
        with self.assertRaises(ValueError):
            _drover.Shared.attach(b"short")
        h = bytearray(s.handle())
        h[9] ^= 1
        with self.assertRaises(OSError) as cm:
            _drover.Shared.attach(bytes(h))
        self.assertEqual(cm.exception.errno, errno.EINVAL)


class TestSynchronized(unittest.TestCase):
    def test_lock_false_is_raw(self):
        v = ctx.Value("i", 5, lock=False)
        a = ctx.Array("i", range(10), lock=False)
        self.assertIsInstance(v, ctypes.c_int)
        self.assertFalse(hasattr(v, "get_lock"))
        self.assertFalse(hasattr(a, "get_obj"))
        self.assertEqual(list(a), list(range(10)))

    def test_bad_lock(self):
        with self.assertRaises(AttributeError):
            ctx.Value("i", 5, lock="navalue")
        with self.assertRaises(AttributeError):
            ctx.Array("i", 3, lock="notalock")

    def test_given_lock(self):
        import threading
        lock = threading.RLock()
        v = ctx.Value("d", 1.5, lock=lock)
        self.assertIs(v.get_lock(), lock)
        self.assertIsInstance(v, mp_sharedctypes.Synchronized)
        with v:
            v.value = 2.5
        self.assertEqual(v.get_obj().value, 2.5)
        s = ctx.Array("c", b"abc", lock=lock)
        self.assertIsInstance(s, mp_sharedctypes.SynchronizedString)
        self.assertEqual((s.value, s.raw, s[1], len(s)), (b"abc", b"abc",
                                                          b"b", 3))
        pt = ctx.Value(Point, 1, 2.0, lock=lock)
        pt.x = 5
        self.assertEqual(pt.get_obj().x, 5)

    def test_default_lock_across_processes(self):
        v = ctx.Value("i", 0)
        a = ctx.Array("i", [1, 2, 3])
        self.assertIsInstance(a, mp_sharedctypes.SynchronizedArray)
        ps = [ctx.Process(target=add_many, args=(v, 200)) for _ in range(4)]
        for p in ps:
            p.start()
        for p in ps:
            p.join(60)
        self.assertEqual([p.exitcode for p in ps], [0] * 4)
        self.assertEqual(v.value, 800)
        self.assertEqual(run(double_items, a), 0)
        self.assertEqual(a[:], [2, 4, 6])


class TestManaged(unittest.TestCase):
    def test_manager_objects_pickle_anywhere(self):
        with ctx.Manager() as m:
            a = m.Array("i", [1, 2, 3], lock=False)
            v = m.Value("d", 1.5, lock=False)
            q = ctx.Queue()
            q.put((a, v))
            b, w = q.get(timeout=60)
            self.assertIsNot(b, a)
            b[0] = 10
            w.value = 2.5
            self.assertEqual((a[0], v.value), (10, 2.5))
            q.put(a)
            self.assertEqual(run(from_queue, q), 0)
            self.assertEqual(list(a), [10, -1, 3])
        with self.assertRaises(RuntimeError):
            ctx.Queue().put(ctx.RawArray("i", 3))


class TestProxy(unittest.TestCase):
    """A proxy over a block of this node behaves as the ctypes object over
    the same bytes."""

    def pair(self, typecode, init):
        obj = ctx.RawArray(typecode, init)
        return obj, dsc._proxy(type(obj), obj._wrapper)

    def test_items_and_slices(self):
        obj, p = self.pair("i", range(10))
        self.assertEqual(len(p), 10)
        for key in [0, 9, -1, -10, slice(None), slice(2, 7), slice(7, 2),
                    slice(None, None, -1), slice(1, None, 3),
                    slice(8, 0, -2), slice(-3, None), slice(20, 30)]:
            self.assertEqual(p[key], obj[key], key)
        self.assertEqual(list(p), list(obj))
        for bad in [10, -11]:
            with self.assertRaises(IndexError):
                p[bad]
            with self.assertRaises(IndexError):
                p[bad] = 1
        with self.assertRaises(TypeError):
            p["x"]
        p[3] = 33
        p[-1] = 99
        p[4:6] = [44, 55]
        p[0:10:4] = (0, -4, -8)
        self.assertEqual(list(obj), [0, 1, 2, 33, -4, 55, 6, 7, -8, 99])
        with self.assertRaises(ValueError):
            p[0:3] = [1, 2]
        with self.assertRaises(TypeError):
            p[0] = "not an int"
        self.assertEqual(obj[0], 0)

    def test_text(self):
        obj, p = self.pair("c", b"hello world")
        self.assertEqual((p.raw, p.value, p[1], p[1:3]),
                         (obj.raw, obj.value, obj[1], obj[1:3]))
        self.assertEqual(list(p), list(obj))
        p.value = b"hi"
        self.assertEqual(obj.raw, b"hi\0lo world")
        self.assertEqual(p.value, b"hi")
        p.raw = b"HEL"
        self.assertEqual(obj.raw, b"HELlo world")
        with self.assertRaises(ValueError):
            p.value = b"x" * 12
        w = ctx.RawArray("u", "wide text")
        pw = dsc._proxy(type(w), w._wrapper)
        self.assertEqual((pw.value, pw[0], pw[1:4]), (w.value, w[0], w[1:4]))
        pw.value = "ok"
        self.assertEqual(w.value, "ok")
        self.assertEqual(w[2:5], "\0e ")

    def test_values_and_structures(self):
        v = ctx.RawValue("d", 1.25)
        pv = dsc._proxy(type(v), v._wrapper)
        self.assertEqual(pv.value, 1.25)
        pv.value = -3.5
        self.assertEqual(v.value, -3.5)
        pt = ctx.RawValue(Point, 1, 2.0)
        pp = dsc._proxy(type(pt), pt._wrapper)
        self.assertEqual((pp.x, pp.y), (1, 2.0))
        pp.y = 7.5
        self.assertEqual((pt.x, pt.y), (1, 7.5))
        sync = dsc.synchronized(pp, __import__("threading").RLock())
        sync.x = 9
        self.assertEqual(pt.x, 9)
        self.assertIsInstance(dsc.synchronized(pv, sync.get_lock()),
                              mp_sharedctypes.Synchronized)

    def test_in_a_child(self):
        arr = ctx.RawArray("i", 5)
        chars = ctx.RawArray("c", 10)
        self.assertEqual(run(through_proxy, arr, chars), 0)
        self.assertEqual(list(arr), [1000, 0, 7, 8, 0])
        self.assertEqual(chars.value, b"proxied")


if __name__ == "__main__":
    unittest.main()
