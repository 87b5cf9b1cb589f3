"""The "drover" start method: Pipe and Connection (over libdrover queues),
in one process, across drover Processes, and with
multiprocessing.connection.wait.

Run by CTest with PYTHONPATH=<build>/python; exits 77 (skipped) when
drover cannot be imported. Timeouts are checked from below only."""

import sys

try:
    import drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)

import array
import multiprocessing
import pickle
import time
import unittest
from multiprocessing.connection import BufferTooShort, wait

try:
    import numpy
except ImportError:
    numpy = None

ctx = multiprocessing.get_context("drover")
LONG = 60


class Unpicklable:
    def __reduce__(self):
        raise pickle.PicklingError("not me")


def echo(conn):
    """Send back what comes, until None; then close."""
    while True:
        obj = conn.recv()
        if obj is None:
            break
        conn.send(obj)
    conn.close()


def send_then_return(conn, n):
    for i in range(n):
        conn.send(i)


def send_close_then_wait(conn, e):
    conn.send("last")
    conn.close()
    e.wait(LONG)


def send_after(conn, e):
    e.wait(LONG)
    conn.send("late")


def start(target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


class TestInOneProcess(unittest.TestCase):
    def test_duplex_both_ways(self):
        a, b = ctx.Pipe()
        self.assertTrue(a.readable and a.writable)
        a.send([1, "two"])
        b.send({3: 4})
        self.assertEqual(b.recv(), [1, "two"])
        self.assertEqual(a.recv(), {3: 4})
        self.assertFalse(a.poll())
        self.assertFalse(b.poll(0))

    def test_one_way(self):
        r, w = ctx.Pipe(duplex=False)
        self.assertTrue(r.readable)
        self.assertFalse(r.writable)
        self.assertTrue(w.writable)
        self.assertFalse(w.readable)
        with self.assertRaisesRegex(OSError, "read-only"):
            r.send(1)
        with self.assertRaisesRegex(OSError, "write-only"):
            w.recv()
        with self.assertRaisesRegex(OSError, "write-only"):
            w.poll()
        w.send(1)
        self.assertTrue(r.poll())
        self.assertTrue(r.poll())  # poll takes nothing
        self.assertEqual(r.recv(), 1)

    def test_bytes(self):
        a, b = ctx.Pipe()
        a.send_bytes(b"hello world")
        a.send_bytes(b"hello world", 6)
        a.send_bytes(b"hello world", 0, 5)
        a.send_bytes(array.array("i", [1, 2, 3]), 4, 4)
        a.send_bytes(b"")
        self.assertEqual(b.recv_bytes(), b"hello world")
        self.assertEqual(b.recv_bytes(), b"world")
        self.assertEqual(b.recv_bytes(), b"hello")
        self.assertEqual(b.recv_bytes(), array.array("i", [2]).tobytes())
        self.assertEqual(b.recv_bytes(), b"")
        for args in ((-1,), (12,), (0, -1), (6, 6)):
            with self.assertRaises(ValueError):
                a.send_bytes(b"hello world", *args)
        with self.assertRaises(ValueError):
            b.recv_bytes(-1)
        a.send_bytes(b"0123456789")
        with self.assertRaisesRegex(OSError, "bad message length"):
            b.recv_bytes(5)
        self.assertTrue(b.closed)

    def test_recv_bytes_into(self):
        a, b = ctx.Pipe()
        buf = bytearray(8)
        a.send_bytes(b"abc")
        self.assertEqual(b.recv_bytes_into(buf, 2), 3)
        self.assertEqual(buf, bytearray(b"\0\0abc\0\0\0"))
        a.send_bytes(b"0123456789")
        with self.assertRaises(BufferTooShort) as cm:
            b.recv_bytes_into(buf)
        self.assertEqual(cm.exception.args[0], b"0123456789")
        with self.assertRaises(ValueError):
            b.recv_bytes_into(buf, -1)
        with self.assertRaises(ValueError):
            b.recv_bytes_into(buf, 9)
        ints = array.array("i", [0] * 4)
        a.send_bytes(array.array("i", [7, 8]))
        self.assertEqual(b.recv_bytes_into(ints, 4), 8)
        self.assertEqual(list(ints), [0, 7, 8, 0])

    def test_closed_handle(self):
        a, b = ctx.Pipe()
        a.close()
        self.assertTrue(a.closed)
        a.close()  # twice is fine
        for call in (lambda: a.send(1), lambda: a.recv(), lambda: a.poll(),
                     lambda: a.send_bytes(b"x"), lambda: a.recv_bytes(),
                     lambda: a.fileno()):
            with self.assertRaisesRegex(OSError, "handle is closed"):
                call()
        with a, b:
            pass
        self.assertTrue(b.closed)

    def test_eof_after_the_rest(self):
        a, b = ctx.Pipe()
        a.send(1)
        a.send(2)
        a.close()
        self.assertTrue(b.poll())
        self.assertEqual(b.recv(), 1)
        self.assertEqual(b.recv(), 2)
        self.assertTrue(b.poll())  # the end of file is ready too
        with self.assertRaises(EOFError):
            b.recv()
        with self.assertRaises(EOFError):
            b.recv_bytes()
        b.send("nobody reads")  # as a pipe whose reader went: no error yet

    def test_eof_when_garbage_collected(self):
        a, b = ctx.Pipe()
        del a
        with self.assertRaises(EOFError):
            b.recv()

    def test_poll_timeout(self):
        a, b = ctx.Pipe()
        t0 = time.monotonic()
        self.assertFalse(b.poll(0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertFalse(b.poll(-1))

    def test_pickling_errors(self):
        a, b = ctx.Pipe()
        with self.assertRaises(pickle.PicklingError):
            a.send(Unpicklable())
        self.assertFalse(b.poll())
        with self.assertRaises(RuntimeError):
            pickle.dumps(a)

    @unittest.skipIf(numpy is None, "numpy is not importable")
    def test_numpy(self):
        a, b = ctx.Pipe()
        x = numpy.arange(1 << 20, dtype=numpy.float64)
        a.send(x)
        y = b.recv()
        self.assertTrue(numpy.array_equal(x, y))
        self.assertTrue(y.flags.writeable)


class TestAcrossProcesses(unittest.TestCase):
    def test_round_trip(self):
        a, b = ctx.Pipe()
        p = start(echo, b)
        b.close()  # the child has its own
        for obj in (0, "x" * 100000, (1, [2, {3: 4}])):
            a.send(obj)
            self.assertEqual(a.recv(), obj)
        a.send(None)
        with self.assertRaises(EOFError):  # the child closed its end
            a.recv()
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_eof_when_the_child_returns(self):
        r, w = ctx.Pipe(duplex=False)
        p = start(send_then_return, w, 3)
        w.close()
        self.assertEqual([r.recv() for _ in range(3)], [0, 1, 2])
        self.assertTrue(r.poll(LONG))
        with self.assertRaises(EOFError):
            r.recv()
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_eof_while_the_child_runs(self):
        r, w = ctx.Pipe(duplex=False)
        e = ctx.Event()
        p = start(send_close_then_wait, w, e)
        w.close()
        self.assertEqual(r.recv(), "last")
        with self.assertRaises(EOFError):
            r.recv()
        self.assertTrue(p.is_alive())
        e.set()
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_parent_dropping_its_copy_lets_go(self):
        r, w = ctx.Pipe(duplex=False)
        e = ctx.Event()
        p = start(send_close_then_wait, w, e)
        del w  # garbage: let go at once, though the child still runs
        self.assertEqual(r.recv(), "last")
        self.assertTrue(r.poll(LONG))
        with self.assertRaises(EOFError):
            r.recv()
        e.set()
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)

    def test_parent_copy_kept_open_means_no_eof(self):
        r, w = ctx.Pipe(duplex=False)
        p = start(send_then_return, w, 1)
        self.assertEqual(r.recv(), 0)
        p.join(LONG)
        self.assertFalse(r.poll(0.1))  # this process still holds w
        w.close()
        self.assertTrue(r.poll(LONG))
        with self.assertRaises(EOFError):
            r.recv()

    def test_a_process_that_does_not_start_gives_its_hold_back(self):
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=send_then_return, args=(w, Unpicklable()))
        with self.assertRaises(pickle.PicklingError):
            p.start()
        w.close()
        self.assertTrue(r.poll(10))
        with self.assertRaises(EOFError):
            r.recv()

    def test_closed_connection_cannot_be_passed(self):
        a, b = ctx.Pipe()
        b.close()
        p = ctx.Process(target=echo, args=(b,))
        with self.assertRaisesRegex(OSError, "handle is closed"):
            p.start()

    def test_connection_wait(self):
        a, b = ctx.Pipe()
        e = ctx.Event()
        p = start(send_after, b, e)
        b.close()
        self.assertEqual(wait([a], 0.1), [])
        e.set()
        self.assertEqual(wait([a], LONG), [a])
        self.assertEqual(a.recv(), "late")
        p.join(LONG)
        # The child is gone: its sentinel is ready, and the end of file.
        self.assertIn(p.sentinel, wait([a, p.sentinel], LONG))
        self.assertEqual(wait([a], LONG), [a])
        with self.assertRaises(EOFError):
            a.recv()

    def test_connection_wait_rearms(self):
        a, b = ctx.Pipe()
        self.assertEqual(wait([a], 0), [])
        b.send(1)
        b.send(2)
        self.assertEqual(wait([a], LONG), [a])
        self.assertEqual(a.recv(), 1)
        self.assertEqual(wait([a], LONG), [a])
        self.assertEqual(a.recv(), 2)
        self.assertEqual(wait([a], 0.3), [])


if __name__ == "__main__":
    unittest.main()
