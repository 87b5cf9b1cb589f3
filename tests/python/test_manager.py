"""The "drover" start method: Manager(), whose objects pickle anywhere.

Run by CTest with the interpreter the extension was built for and
PYTHONPATH=<build>/python; exits 77 (skipped) when drover cannot be
imported."""

import sys

try:
    import drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)

import multiprocessing
import pickle
import unittest

ctx = multiprocessing.get_context("drover")
LONG = 60


def fill(d, ns):
    d["from"] = "child"
    ns.x += 1


def set_test(ns):
    ns.test = 1


def forward(carrier, out):
    """Take a queue out of a queue and answer through it."""
    q = carrier.get(timeout=LONG)
    q.put("through a queue that came in a message")
    out.put("done")


class ManagerTest(unittest.TestCase):
    def test_objects_pickle_anywhere(self):
        with ctx.Manager() as m:
            q = m.Queue()
            e = m.Event()
            for obj in (q, e):
                pickle.loads(pickle.dumps(obj))
            # Not managed: only into a starting Process.
            with self.assertRaises(RuntimeError):
                pickle.dumps(ctx.Queue())
            carrier, out = ctx.Queue(), ctx.Queue()
            p = ctx.Process(target=forward, args=(carrier, out))
            p.start()
            carrier.put(q)
            self.assertEqual(out.get(timeout=LONG), "done")
            self.assertEqual(q.get(timeout=LONG),
                             "through a queue that came in a message")
            p.join(LONG)
            self.assertEqual(p.exitcode, 0)

    def test_objects_go_with_the_manager(self):
        m = ctx.Manager()
        data = pickle.dumps(m.Queue())
        m.shutdown()
        import gc
        gc.collect()
        with self.assertRaises(FileNotFoundError):
            pickle.loads(data)
        with self.assertRaises(ValueError):
            m.Queue()

    def test_served_objects(self):
        # dict, list and Namespace live in the manager's server process.
        with ctx.Manager() as m:
            d, ns = m.dict(), m.Namespace()
            ns.x = 1
            p = ctx.Process(target=fill, args=(d, ns))
            p.start()
            p.join(LONG)
            self.assertEqual(p.exitcode, 0)
            self.assertEqual(dict(d), {"from": "child"})
            self.assertEqual(ns.x, 2)

    def test_initializer_runs_in_the_server(self):
        with ctx.Manager() as m:
            ns = m.Namespace()
            ns.test = 0
            from drover.managers import SyncManager
            other = SyncManager(ctx=ctx)
            with self.assertRaises(TypeError):
                other.start(1)
            other.start(set_test, (ns,))
            self.assertEqual(ns.test, 1)
            other.shutdown()

    def test_module_function_follows_the_start_method(self):
        old = multiprocessing.get_start_method(allow_none=True)
        multiprocessing.set_start_method("drover", force=True)
        try:
            from drover.managers import SyncManager
            with multiprocessing.Manager() as m:
                self.assertIsInstance(m, SyncManager)
        finally:
            multiprocessing.set_start_method(old, force=True)


if __name__ == "__main__":
    unittest.main()
