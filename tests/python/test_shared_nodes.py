"""The "drover" start method: Value, Array, RawValue and RawArray across
two nodes emulated on this host (tests/python/two_nodes.py).

Run by CTest as a plain script: it runs itself again under `drover run`
across the two nodes (two_nodes.run) with --inner, and exits with that
run's status. Inside, of each pair of children one is placed on each
node: the one on node 1 gets proxies (drover.sharedctypes) whose reads
and writes go to node 0. Exits 77 (skipped) when drover cannot be
imported."""

import importlib.util
import os
import sys

# Children run this file again as __mp_main__ (and a process of node 1
# as __main__ with --inner): only the outer run starts the job.
if __name__ == "__main__" and "--inner" not in sys.argv:
    if importlib.util.find_spec("drover") is None:
        print("skipped: the drover package is not importable")
        sys.exit(77)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import two_nodes
    sys.exit(two_nodes.run([sys.executable, os.path.abspath(__file__),
                            "--inner"] + sys.argv[1:]).returncode)

import drover  # noqa: E402  (first, before threads start)

import ctypes  # noqa: E402
import multiprocessing  # noqa: E402
import unittest  # noqa: E402

from drover import _drover  # noqa: E402

ctx = multiprocessing.get_context("drover")
LONG = 60
BIG = 3 << 20  # doubles: 24 MiB, over DV_SHARED_ATOMIC_MAX


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_double)]


def on_both_nodes(target, *args):
    """Run target(out, *args) in two children, one on each node; returns
    their exit codes and what each put into out, by node."""
    out = ctx.Queue()
    ps = [ctx.Process(target=target, args=(out,) + args,
                      placement=drover.Placement(host=k)) for k in (0, 1)]
    for p in ps:
        p.start()
    got = {}
    for _ in ps:
        node, what = out.get(timeout=LONG)
        got[node] = what
    for p in ps:
        p.join(LONG)
    return [p.exitcode for p in ps], got


def raw_child(out, v, arr, chars, pt):
    node = _drover.node_self()
    seen = (v.value, arr[:], chars.value, pt.x)
    # Each node writes its own half.
    arr[node] = 10 + node
    arr[2 + node * 2:4 + node * 2] = [node, node]
    if node == 1:
        v.value = 7.25
        chars.value = b"node one"
        pt.y = -1.5
    out.put((node, (type(arr).__name__, seen)))


def big_child(out, arr):
    node = _drover.node_self()
    if node == 1:
        ok = arr[BIG - 3:] == [1.0, 2.0, 3.0]
        arr[:] = [float(i % 1000) for i in range(BIG)]
        out.put((node, ok))
    else:
        out.put((node, True))


def errors_child(out, arr):
    caught = []
    for fn in (lambda: arr[4], lambda: arr.__setitem__(slice(0, 2), [1]),
               lambda: arr.__setitem__(0, "x")):
        try:
            fn()
        except Exception as e:  # what a ctypes array raises
            caught.append(type(e).__name__)
    try:
        memoryview(arr._wrapper._s)
        mapped = True
    except BufferError:
        mapped = False
    out.put((_drover.node_self(), (caught, mapped)))


_pool_shared = None


def pool_init(arr, counter):
    global _pool_shared
    _pool_shared = (arr, counter)


def pool_work(i):
    arr, counter = _pool_shared
    node = _drover.node_self()
    arr[i] = i * 10 + node
    with counter.get_lock():
        counter.value += 1
    return node, type(arr).__name__


def add_child(out, v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    out.put((_drover.node_self(), None))


class TestAcrossNodes(unittest.TestCase):
    def test_raw_objects(self):
        v = ctx.RawValue("d", 1.5)
        arr = ctx.RawArray("i", [0, 0, 5, 5, 5, 5])
        chars = ctx.RawArray("c", 16)
        chars.value = b"start"
        pt = ctx.RawValue(Point, 3, 0.5)
        codes, got = on_both_nodes(raw_child, v, arr, chars, pt)
        self.assertEqual(codes, [0, 0])
        self.assertEqual(set(got), {0, 1})
        self.assertEqual(got[0][0], "c_int_Array_6")
        self.assertEqual(got[1][0], "_ArrayProxy")
        self.assertEqual(got[1][1][0], 1.5)
        self.assertEqual(got[1][1][2:], (b"start", 3))
        self.assertEqual(list(arr), [10, 11, 0, 0, 1, 1])
        self.assertEqual((v.value, chars.value, pt.x, pt.y),
                         (7.25, b"node one", 3, -1.5))

    def test_big_array(self):
        arr = ctx.RawArray("d", BIG)
        arr[BIG - 3:] = [1.0, 2.0, 3.0]
        codes, got = on_both_nodes(big_child, arr)
        self.assertEqual(codes, [0, 0])
        self.assertEqual(got, {0: True, 1: True})
        self.assertEqual(arr[BIG - 1], float((BIG - 1) % 1000))
        self.assertEqual(arr[12345], 345.0)

    def test_errors_as_ctypes(self):
        arr = ctx.RawArray("i", 4)
        codes, got = on_both_nodes(errors_child, arr)
        self.assertEqual(codes, [0, 0])
        errors = ["IndexError", "ValueError", "TypeError"]
        self.assertEqual(got, {0: (errors, True), 1: (errors, False)})

    def test_value_with_lock(self):
        v = ctx.Value("i", 0)
        codes, got = on_both_nodes(add_child, v, 300)
        self.assertEqual(codes, [0, 0])
        self.assertEqual(set(got), {0, 1})
        self.assertEqual(v.value, 600)


    def test_pool_initargs(self):
        # A pool's workers get them as a Process gets its arguments, on
        # whichever node each runs.
        arr = ctx.RawArray("i", 16)
        counter = ctx.Value("i", 0)
        with ctx.Pool(2, initializer=pool_init,
                      initargs=(arr, counter)) as pool:
            got = pool.map(pool_work, range(16), chunksize=1)
        kinds = {0: "c_int_Array_16", 1: "_ArrayProxy"}
        self.assertEqual([kind for _, kind in got],
                         [kinds[node] for node, _ in got])
        self.assertEqual(list(arr), [i * 10 + node
                                     for i, (node, _) in enumerate(got)])
        self.assertEqual(counter.value, 16)


if __name__ == "__main__":
    unittest.main(argv=[a for a in sys.argv if a != "--inner"])
