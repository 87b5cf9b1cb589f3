"""The "drover" start method: Lock, RLock, Semaphore, BoundedSemaphore,
Condition and Barrier, in one process and across drover Processes.

Run by CTest with the interpreter the extension was built for and
PYTHONPATH=<build>/python; exits 77 (skipped) when drover cannot be
imported. Timeouts are checked from below only."""

import sys

try:
    import drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)

import multiprocessing
import pickle
import threading
import time
import unittest

from drover import synchronize as dsync

ctx = multiprocessing.get_context("drover")

LONG = 60


def start(target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


def hold_until(lock, held, go):
    with lock:
        held.set()
        go.wait(LONG)


def try_lock(lock, out):
    out.put(lock.acquire(False))
    out.put(lock.acquire(timeout=LONG))
    lock.release()


def count_under_lock(lock, q, n):
    for i in range(n):
        with lock:
            q.put(i)


def rlock_nested(rlock, out):
    with rlock:
        with rlock:
            out.put(rlock._semlock._count())


def sem_take(sem, out, n):
    for _ in range(n):
        out.put(sem.acquire(timeout=LONG))


def cond_waiter(cond, ready, out):
    with cond:
        ready.release()
        out.put(cond.wait(LONG))


def barrier_party(b, out, passes):
    for _ in range(passes):
        out.put(b.wait(LONG))


def barrier_late(b, out):
    try:
        b.wait(LONG)
        out.put("passed")
    except threading.BrokenBarrierError:
        out.put("broken")


def write_heap(wrapper, value):
    wrapper.create_memoryview().cast("i")[0] = value


class AppendTo:
    def __init__(self, q):
        self.q = q

    def __call__(self):
        self.q.put("action")


class Fails:
    def __call__(self):
        raise KeyError("from the action")


class TestLockLocal(unittest.TestCase):
    def test_types_are_drovers(self):
        multiprocessing.set_start_method("drover", force=True)
        try:
            self.assertIsInstance(multiprocessing.Lock(), dsync.Lock)
            self.assertIsInstance(multiprocessing.RLock(), dsync.RLock)
            self.assertIsInstance(multiprocessing.Semaphore(), dsync.Semaphore)
            self.assertIsInstance(multiprocessing.Barrier(2), dsync.Barrier)
        finally:
            multiprocessing.set_start_method(None, force=True)

    def test_lock(self):
        lock = ctx.Lock()
        self.assertTrue(lock.acquire())
        self.assertFalse(lock.acquire(False))
        self.assertFalse(lock.acquire(timeout=0.01))
        self.assertIn("owner=MainProcess", repr(lock))
        lock.release()
        self.assertIn("owner=None", repr(lock))
        with self.assertRaisesRegex(ValueError, "released too many times"):
            lock.release()
        with lock:
            self.assertFalse(lock.acquire(False))
        self.assertTrue(lock.acquire(False))
        lock.release()

    def test_lock_released_by_another_thread(self):
        lock = ctx.Lock()
        lock.acquire()
        t = threading.Thread(target=lock.release)
        t.start()
        t.join()
        self.assertTrue(lock.acquire(False))
        lock.release()

    def test_rlock(self):
        r = ctx.RLock()
        for _ in range(3):
            self.assertTrue(r.acquire())
        self.assertEqual(r._semlock._count(), 3)
        self.assertIn("MainProcess, 3", repr(r))
        for _ in range(3):
            r.release()
        with self.assertRaises(AssertionError):
            r.release()
        self.assertEqual(r._semlock._count(), 0)

    def test_rlock_other_thread_waits(self):
        r = ctx.RLock()
        r.acquire()
        got = []
        t = threading.Thread(target=lambda: got.append(r.acquire(False)))
        t.start()
        t.join()
        self.assertEqual(got, [False])
        errors = []

        def release():
            try:
                r.release()
            except AssertionError as e:
                errors.append(e)
        t = threading.Thread(target=release)
        t.start()
        t.join()
        self.assertEqual(len(errors), 1)  # not its lock
        self.assertEqual(r._semlock._count(), 1)
        r.release()

    def test_timeouts(self):
        lock = ctx.Lock()
        lock.acquire()
        t0 = time.monotonic()
        self.assertFalse(lock.acquire(True, 0.1))
        self.assertGreaterEqual(time.monotonic() - t0, 0.09)
        self.assertFalse(lock.acquire(True, -1))
        self.assertFalse(lock.acquire(False, 5))
        with self.assertRaises(TypeError):
            lock.acquire(True, "soon")
        with self.assertRaises(ValueError):
            lock.acquire(True, float("nan"))

    def test_not_picklable_outside_a_process_start(self):
        with self.assertRaises(RuntimeError):
            pickle.dumps(ctx.Lock())

    def test_bad_handle(self):
        with self.assertRaises(ValueError):
            drover._drover.SemLock.attach(b"short", 1, 1)
        with self.assertRaises(OSError):
            drover._drover.SemLock.attach(bytes(64), 1, 1)
        e = drover._drover.Event()
        with self.assertRaises(OSError):
            drover._drover.SemLock.attach(e.handle(), 1, 1)


class TestSemaphoreLocal(unittest.TestCase):
    def test_semaphore(self):
        s = ctx.Semaphore(2)
        self.assertEqual(s.get_value(), 2)
        self.assertTrue(s.acquire())
        self.assertTrue(s.acquire())
        self.assertFalse(s.acquire(False))
        self.assertTrue(s._semlock._is_zero())
        s.release()
        s.release()
        s.release()
        self.assertEqual(s.get_value(), 3)
        self.assertEqual(repr(s), "<Semaphore(value=3)>")

    def test_bounded(self):
        s = ctx.BoundedSemaphore(2)
        s.acquire()
        s.release()
        with self.assertRaisesRegex(ValueError, "too many times"):
            s.release()
        self.assertEqual(s.get_value(), 2)
        self.assertEqual(repr(s), "<BoundedSemaphore(value=2, maxvalue=2)>")

    def test_bad_values(self):
        with self.assertRaises(ValueError):
            ctx.Semaphore(-1)
        with self.assertRaises(ValueError):
            ctx.BoundedSemaphore(0)
        with self.assertRaises((ValueError, OverflowError)):
            ctx.Semaphore(2 ** 40)

    def test_zero_waits(self):
        s = ctx.Semaphore(0)
        self.assertFalse(s.acquire(timeout=0.05))
        threading.Timer(0.05, s.release).start()
        self.assertTrue(s.acquire(timeout=LONG))


class TestConditionLocal(unittest.TestCase):
    def test_notify_between_threads(self):
        c = ctx.Condition()
        ready = threading.Semaphore(0)
        got = []

        def waiter():
            with c:
                ready.release()
                got.append(c.wait(LONG))
        t = threading.Thread(target=waiter)
        t.start()
        ready.acquire()
        with c:
            c.notify()
        t.join()
        self.assertEqual(got, [True])
        with c:
            self.assertFalse(c.wait(0.01))

    def test_wait_needs_the_lock(self):
        c = ctx.Condition(ctx.Lock())
        with self.assertRaises(AssertionError):
            c.wait(0)


class TestBarrierLocal(unittest.TestCase):
    def test_one_party(self):
        b = ctx.Barrier(1)
        self.assertEqual(b.wait(), 0)
        self.assertEqual(b.wait(), 0)
        self.assertEqual(b.parties, 1)
        self.assertFalse(b.broken)

    def test_threads_and_action(self):
        done = []
        b = ctx.Barrier(3, action=lambda: done.append(len(done)))
        got = []

        def party():
            got.append(b.wait(LONG))
            got.append(list(done))
        ts = [threading.Thread(target=party) for _ in range(2)]
        for t in ts:
            t.start()
        party()
        for t in ts:
            t.join()
        self.assertEqual(sorted(g for g in got if isinstance(g, int)),
                         [0, 1, 2])
        self.assertEqual([g for g in got if isinstance(g, list)],
                         [[0], [0], [0]])

    def test_timeout_breaks_then_reset(self):
        b = ctx.Barrier(2)
        with self.assertRaises(threading.BrokenBarrierError):
            b.wait(0.05)
        self.assertTrue(b.broken)
        with self.assertRaises(threading.BrokenBarrierError):
            b.wait(LONG)
        b.reset()
        self.assertFalse(b.broken)
        self.assertEqual(b.n_waiting, 0)

    def test_abort_wakes_waiter(self):
        b = ctx.Barrier(2)
        out = []

        def party():
            try:
                b.wait(LONG)
            except threading.BrokenBarrierError:
                out.append("broken")
        t = threading.Thread(target=party)
        t.start()
        while b.n_waiting < 1:
            time.sleep(0.001)
        b.abort()
        t.join()
        self.assertEqual(out, ["broken"])

    def test_failing_action_breaks_it(self):
        b = ctx.Barrier(1, action=Fails())
        with self.assertRaises(KeyError):
            b.wait()
        self.assertTrue(b.broken)

    def test_bad_parties(self):
        with self.assertRaises(ValueError):
            ctx.Barrier(0)


class TestAcrossProcesses(unittest.TestCase):
    def test_lock_held_by_a_child(self):
        lock, held, go = ctx.Lock(), ctx.Event(), ctx.Event()
        p = start(hold_until, lock, held, go)
        self.assertTrue(held.wait(LONG))
        self.assertFalse(lock.acquire(False))
        self.assertIn("SomeOtherProcess", repr(lock))
        go.set()
        self.assertTrue(lock.acquire(timeout=LONG))
        lock.release()
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_child_waits_for_parent(self):
        lock, out = ctx.Lock(), ctx.Queue()
        lock.acquire()
        p = start(try_lock, lock, out)
        self.assertFalse(out.get(timeout=LONG))
        lock.release()
        self.assertTrue(out.get(timeout=LONG))
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_mutual_exclusion(self):
        lock, q = ctx.Lock(), ctx.Queue()
        ps = [start(count_under_lock, lock, q, 50) for _ in range(3)]
        got = [q.get(timeout=LONG) for _ in range(150)]
        for p in ps:
            p.join(LONG)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(sorted(got), sorted(list(range(50)) * 3))

    def test_rlock_count_is_per_process(self):
        r, out = ctx.RLock(), ctx.Queue()
        r.acquire()
        p = start(rlock_nested, r, out)
        time.sleep(0.05)
        self.assertTrue(out.empty())
        r.release()
        self.assertEqual(out.get(timeout=LONG), 2)
        p.join(LONG)
        self.assertEqual(r._semlock._count(), 0)

    def test_semaphore(self):
        s, out = ctx.Semaphore(0), ctx.Queue()
        p = start(sem_take, s, out, 3)
        for _ in range(3):
            s.release()
        self.assertEqual([out.get(timeout=LONG) for _ in range(3)],
                         [True] * 3)
        p.join(LONG)
        self.assertEqual(s.get_value(), 0)

    def test_condition(self):
        c, ready, out = ctx.Condition(), ctx.Semaphore(0), ctx.Queue()
        ps = [start(cond_waiter, c, ready, out) for _ in range(2)]
        for _ in range(2):
            self.assertTrue(ready.acquire(timeout=LONG))
        with c:
            c.notify_all()
        self.assertEqual([out.get(timeout=LONG) for _ in range(2)],
                         [True, True])
        for p in ps:
            p.join(LONG)

    def test_barrier(self):
        b, out = ctx.Barrier(3), ctx.Queue()
        ps = [start(barrier_party, b, out, 5) for _ in range(3)]
        got = [out.get(timeout=LONG) for _ in range(15)]
        for p in ps:
            p.join(LONG)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(sorted(got), sorted([0, 1, 2] * 5))

    def test_barrier_action_in_last_process(self):
        out = ctx.Queue()
        b = ctx.Barrier(2, action=AppendTo(out))
        p = start(barrier_party, b, out, 1)
        index = b.wait(LONG)
        got = [out.get(timeout=LONG), out.get(timeout=LONG)]
        p.join(LONG)
        self.assertEqual(got[0], "action")  # before either went on
        self.assertEqual(sorted([index, got[1]]), [0, 1])

    def test_heap_memory_reaches_child(self):
        # multiprocessing.heap's arenas (under the standard library's
        # shared lists and counters) pass as a descriptor the child opens
        # again on the same node.
        import multiprocessing.heap
        w = multiprocessing.heap.BufferWrapper(4)
        view = w.create_memoryview().cast("i")
        view[0] = 1
        p = start(write_heap, w, 12345)
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(view[0], 12345)

    def test_barrier_abort_reaches_child(self):
        b, out = ctx.Barrier(2), ctx.Queue()
        p = start(barrier_late, b, out)
        while b.n_waiting < 1:
            time.sleep(0.001)
        b.abort()
        self.assertEqual(out.get(timeout=LONG), "broken")
        p.join(LONG)


if __name__ == "__main__":
    unittest.main(verbosity=1)
