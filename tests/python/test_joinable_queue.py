"""The "drover" start method: JoinableQueue (task_done, join) and
SimpleQueue, in one process and across drover Processes.

Run by CTest with PYTHONPATH=<build>/python; exits 77 (skipped) when
drover cannot be imported. Timeouts are checked from below only."""

import sys

try:
    import drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)

import multiprocessing
import pickle
import time
import unittest

ctx = multiprocessing.get_context("drover")
LONG = 60


class Unpicklable:
    def __reduce__(self):
        raise pickle.PicklingError("not me")


def worker(q, out):
    for obj in iter(q.get, None):
        time.sleep(0.01)
        out.put(obj * 2)
        q.task_done()
    q.task_done()


def put_empties(q, go, done):
    go.wait(LONG)
    try:
        q.put(q.empty())
        q.put(q.empty())
    finally:
        done.set()


def get_one(q, out):
    out.put(q.get())


class TestJoinableQueue(unittest.TestCase):
    def test_task_done_too_many_times(self):
        q = ctx.JoinableQueue()
        with self.assertRaisesRegex(ValueError,
                                    r"task_done\(\) called too many times"):
            q.task_done()
        q.put(1)
        q.get()
        q.task_done()
        with self.assertRaisesRegex(ValueError, "too many times"):
            q.task_done()

    def test_join_waits_for_every_task(self):
        q = ctx.JoinableQueue()
        self.assertTrue(q.join(0))
        q.put(1)
        t0 = time.monotonic()
        self.assertFalse(q.join(0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertEqual(q.get(), 1)
        self.assertFalse(q.join(0))  # taken is not done
        q.task_done()
        self.assertTrue(q.join(0))
        q.join()

    def test_workers_in_processes(self):
        q, out = ctx.JoinableQueue(), ctx.Queue()
        ws = [ctx.Process(target=worker, args=(q, out)) for _ in range(3)]
        for w in ws:
            w.start()
        for i in range(20):
            q.put(i)
        self.assertTrue(q.join(LONG))
        self.assertEqual(sorted(out.get(timeout=LONG) for _ in range(20)),
                         [2 * i for i in range(20)])
        for w in ws:
            q.put(None)
        q.join()
        for w in ws:
            w.join(LONG)
            self.assertEqual(w.exitcode, 0)

    def test_queue_interface_and_close(self):
        q = ctx.JoinableQueue(2)
        q.put(1)
        q.put_nowait(2)
        self.assertTrue(q.full())
        self.assertEqual(q.qsize(), 2)
        q.close()
        for call in (lambda: q.put(3), q.get, q.task_done, q.join):
            with self.assertRaisesRegex(ValueError, "is closed"):
                call()

    def test_pickling_error_in_put(self):
        q = ctx.JoinableQueue()
        with self.assertRaises(pickle.PicklingError):
            q.put(Unpicklable())
        self.assertTrue(q.join(0))  # nothing was put


class TestSimpleQueue(unittest.TestCase):
    def test_put_get_empty(self):
        q = ctx.SimpleQueue()
        self.assertTrue(q.empty())
        q.put([1, 2])
        self.assertFalse(q.empty())
        self.assertFalse(q.empty())  # empty() takes nothing
        self.assertEqual(q.get(), [1, 2])
        self.assertTrue(q.empty())

    def test_empty_in_a_child_takes_nothing(self):
        # CPython's issue 30301.
        q, go, done = ctx.SimpleQueue(), ctx.Event(), ctx.Event()
        p = ctx.Process(target=put_empties, args=(q, go, done))
        p.start()
        self.assertTrue(q.empty())
        go.set()
        self.assertTrue(done.wait(LONG))
        self.assertEqual([q.get(), q.get()], [True, False])
        self.assertTrue(q.empty())
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_child_gets(self):
        q, out = ctx.SimpleQueue(), ctx.Queue()
        p = ctx.Process(target=get_one, args=(q, out))
        p.start()
        q.put("to the child")
        self.assertEqual(out.get(timeout=LONG), "to the child")
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_close(self):
        q = ctx.SimpleQueue()
        q.close()
        q.close()
        self.assertTrue(q._reader.closed)
        self.assertTrue(q._writer.closed)
        with self.assertRaisesRegex(OSError, "handle is closed"):
            q.get()
        with self.assertRaisesRegex(OSError, "handle is closed"):
            q.put(1)
        with self.assertRaisesRegex(OSError, "handle is closed"):
            q.empty()

    def test_errors(self):
        q = ctx.SimpleQueue()
        with self.assertRaises(pickle.PicklingError):
            q.put(Unpicklable())
        self.assertTrue(q.empty())
        with self.assertRaises(RuntimeError):
            pickle.dumps(q)

    def test_module_functions_follow_the_start_method(self):
        old = multiprocessing.get_start_method(allow_none=True)
        multiprocessing.set_start_method("drover", force=True)
        try:
            import drover.queues
            self.assertIsInstance(multiprocessing.SimpleQueue(),
                                  drover.queues.SimpleQueue)
            self.assertIsInstance(multiprocessing.JoinableQueue(),
                                  drover.queues.JoinableQueue)
        finally:
            multiprocessing.set_start_method(old, force=True)


if __name__ == "__main__":
    unittest.main()
