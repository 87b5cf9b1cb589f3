"""The "drover" start method: Queue and Event, in one process and across
drover Processes.

Run by CTest with the interpreter the extension was built for and
PYTHONPATH=<build>/python; exits 77 (skipped) when drover cannot be
imported. Timeouts are checked from below only (a wait may take longer
on a loaded machine, never less)."""

import sys

try:
    import drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)

import multiprocessing
import pickle
import queue
import signal
import time
import unittest

try:
    import numpy
except ImportError:
    numpy = None

ctx = multiprocessing.get_context("drover")

# Long enough never to pass on a loaded machine before the other side acts.
LONG = 60


def echo(qin, qout):
    """Put back what comes in, until None."""
    while True:
        obj = qin.get(timeout=LONG)
        if obj is None:
            break
        qout.put(obj)


def put_many(q, n):
    for i in range(n):
        q.put(i)


def wait_then_put(e, q):
    q.put(e.wait(LONG))


def set_after_wait(go, done):
    if go.wait(LONG):
        done.set()


def through_own(q, out):
    q.put("back")
    out.put(q.get(timeout=LONG))


def put_big(q, n):
    q.put(b"\x5a" * n)


def start(target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


class Unpicklable:
    def __reduce__(self):
        raise pickle.PicklingError("not me")


class TestQueueLocal(unittest.TestCase):
    def test_put_get_fifo_and_sizes(self):
        q = ctx.Queue()
        self.assertTrue(q.empty())
        self.assertFalse(q.full())
        self.assertEqual(q.qsize(), 0)
        for obj in (1, "two", [3.0], {"four": (4,)}, None):
            q.put(obj)
        self.assertEqual(q.qsize(), 5)
        self.assertFalse(q.empty())
        self.assertEqual([q.get() for _ in range(5)],
                         [1, "two", [3.0], {"four": (4,)}, None])
        self.assertTrue(q.empty())

    def test_maxsize_full_and_timeouts(self):
        q = ctx.Queue(2)
        q.put(1)
        q.put_nowait(2)
        self.assertTrue(q.full())
        self.assertEqual(q.qsize(), 2)
        with self.assertRaises(queue.Full):
            q.put_nowait(3)
        with self.assertRaises(queue.Full):
            q.put(3, block=False)
        t0 = time.monotonic()
        with self.assertRaises(queue.Full):
            q.put(3, timeout=0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertEqual(q.get_nowait(), 1)
        self.assertFalse(q.full())
        q.put(3, timeout=0.2)
        self.assertEqual([q.get(), q.get()], [2, 3])

    def test_empty_and_timeouts(self):
        q = ctx.Queue()
        with self.assertRaises(queue.Empty):
            q.get_nowait()
        with self.assertRaises(queue.Empty):
            q.get(block=False)
        with self.assertRaises(queue.Empty):
            q.get(timeout=-1)
        t0 = time.monotonic()
        with self.assertRaises(queue.Empty):
            q.get(timeout=0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)

    def test_close_then_put_or_get_raises(self):
        q = ctx.Queue()
        q.put(1)
        q.close()
        with self.assertRaisesRegex(ValueError, "is closed"):
            q.put(2)
        with self.assertRaisesRegex(ValueError, "is closed"):
            q.get()
        with self.assertRaisesRegex(ValueError, "is closed"):
            q.get_nowait()
        q.join_thread()
        q.cancel_join_thread()

    def test_join_thread_before_close(self):
        with self.assertRaises(AssertionError):
            ctx.Queue().join_thread()

    def test_unpicklable_object_fails_in_put(self):
        q = ctx.Queue()
        with self.assertRaises(pickle.PicklingError):
            q.put(Unpicklable())
        self.assertTrue(q.empty())

    def test_only_passed_by_starting_a_process(self):
        with self.assertRaises(RuntimeError):
            pickle.dumps(ctx.Queue())
        with self.assertRaises(RuntimeError):
            pickle.dumps(ctx.Event())

    def test_blocking_get_is_interrupted_by_a_signal(self):
        def handler(signum, frame):
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGALRM, handler)
        self.addCleanup(signal.signal, signal.SIGALRM, old)
        q = ctx.Queue()
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with self.assertRaises(KeyboardInterrupt):
            q.get()
        e = ctx.Event()
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with self.assertRaises(KeyboardInterrupt):
            e.wait()


class TestQueueAcrossProcesses(unittest.TestCase):
    def test_round_trip_through_a_child(self):
        qin, qout = ctx.Queue(), ctx.Queue()
        p = start(echo, qin, qout)
        for obj in (0, "x" * 1000, (1, [2, {3: 4}])):
            qin.put(obj)
            self.assertEqual(qout.get(timeout=LONG), obj)
        qin.put(None)
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_bounded_queue_fills_from_a_child(self):
        q = ctx.Queue(3)
        p = start(put_many, q, 50)
        self.assertEqual([q.get(timeout=LONG) for _ in range(50)],
                         list(range(50)))
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)
        self.assertTrue(q.empty())

    def test_queue_dropped_by_the_parent_still_reaches_the_child(self):
        # The Popen keeps what it passed until the child has ended.
        out = ctx.Queue()
        p = start(through_own, ctx.Queue(), out)
        self.assertEqual(out.get(timeout=LONG), "back")
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_large_bytes(self):
        n = 8 << 20
        q = ctx.Queue()
        p = start(put_big, q, n)
        data = q.get(timeout=LONG)
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(len(data), n)
        self.assertEqual(data, b"\x5a" * n)

    @unittest.skipIf(numpy is None, "numpy is not importable")
    def test_large_numpy_array(self):
        a = numpy.arange(1 << 20, dtype=numpy.float64)  # 8 MiB
        qin, qout = ctx.Queue(), ctx.Queue()
        p = start(echo, qin, qout)
        qin.put(a)
        b = qout.get(timeout=LONG)
        qin.put(None)
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(b.dtype, a.dtype)
        self.assertTrue(numpy.array_equal(a, b))


class TestEvent(unittest.TestCase):
    def test_set_clear_is_set_and_wait_timeout(self):
        e = ctx.Event()
        self.assertFalse(e.is_set())
        self.assertIn("unset", repr(e))
        t0 = time.monotonic()
        self.assertFalse(e.wait(0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertFalse(e.wait(0))
        e.set()
        self.assertTrue(e.is_set())
        self.assertTrue(e.wait())
        self.assertTrue(e.wait(0))
        e.clear()
        self.assertFalse(e.is_set())
        self.assertFalse(e.wait(-1))

    def test_child_waits_for_the_parent(self):
        e, q = ctx.Event(), ctx.Queue()
        p = start(wait_then_put, e, q)
        with self.assertRaises(queue.Empty):
            q.get(timeout=0.2)
        e.set()
        self.assertIs(q.get(timeout=LONG), True)
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_parent_waits_for_the_child(self):
        go, done = ctx.Event(), ctx.Event()
        p = start(set_after_wait, go, done)
        self.assertFalse(done.wait(0.2))
        go.set()
        self.assertTrue(done.wait(LONG))
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)



class DefaultContextTest(unittest.TestCase):
    def test_module_functions_follow_the_start_method(self):
        old = multiprocessing.get_start_method(allow_none=True)
        multiprocessing.set_start_method("drover", force=True)
        try:
            import drover.queues
            import drover.synchronize
            self.assertIsInstance(multiprocessing.Queue(), drover.queues.Queue)
            self.assertIsInstance(multiprocessing.Event(),
                                  drover.synchronize.Event)
        finally:
            multiprocessing.set_start_method(old, force=True)
        other = multiprocessing.get_context("fork").Event()
        self.assertNotIsInstance(other, drover.synchronize.Event)

if __name__ == "__main__":
    unittest.main()
