"""The "drover" start method: Value, Array, RawValue and RawArray across
two nodes emulated on loopback (hosts lo-a and lo-b of one machine).

Run by CTest as a plain script: it runs itself again under `drover run
--hostfile` (the drover binary of the build tree the package is in) with
--inner, and exits with that run's status. Inside, processes are placed
round-robin, so of two children one runs on each node: the one on node 1
gets proxies (drover.sharedctypes) whose reads and writes go to node 0.
Exits 77 (skipped) when drover or its binary cannot be found."""

import os
import sys


def run_inside():
    import importlib.util
    import subprocess
    import tempfile
    spec = importlib.util.find_spec("drover")
    if spec is None or not spec.origin:
        print("skipped: the drover package is not importable")
        sys.exit(77)
    tree = os.path.dirname(os.path.dirname(os.path.dirname(spec.origin)))
    binary = os.path.join(tree, "bin", "drover")
    if not os.access(binary, os.X_OK):
        print("skipped: no drover binary beside the package (%s)" % binary)
        sys.exit(77)
    with tempfile.TemporaryDirectory() as d:
        hosts = os.path.join(d, "hosts")
        with open(hosts, "w") as f:
            f.write("lo-a\nlo-b\n")
        env = dict(os.environ, DROVER_NODE_NAME="lo-a")
        cmd = [binary, "run", "--hostfile", hosts,
               "--launch-cmd", "env DROVER_NODE_NAME={host} {cmd}",
               "--network-prefix", "127.0.0.0/8", "--job-id",
               "pyshn%d" % os.getpid(), "--", sys.executable,
               os.path.abspath(__file__), "--inner"] + sys.argv[1:]
        sys.exit(subprocess.run(cmd, env=env, timeout=300).returncode)


# Children run this file again as __mp_main__ (and a process of node 1
# as __main__ with --inner): only the outer run starts the job.
if __name__ == "__main__" and "--inner" not in sys.argv:
    run_inside()

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


def has_rlock():
    try:
        ctx.RLock()
    except drover.NotSupportedError:
        return False
    return True


def on_both_nodes(target, *args):
    """Run target(out, *args) in two children, one per node; returns what
    each put into out, by node."""
    out = ctx.Queue()
    ps = [ctx.Process(target=target, args=(out,) + args) for _ in range(2)]
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

    @unittest.skipUnless(has_rlock(), "needs ctx.RLock (the sync work)")
    def test_value_with_lock(self):
        v = ctx.Value("i", 0)
        codes, got = on_both_nodes(add_child, v, 300)
        self.assertEqual(codes, [0, 0])
        self.assertEqual(set(got), {0, 1})
        self.assertEqual(v.value, 600)


if __name__ == "__main__":
    unittest.main(argv=[a for a in sys.argv if a != "--inner"])
