"""The "drover" start method: Process.sentinel with
multiprocessing.connection.wait.

Run by CTest with PYTHONPATH=<build>/python; exits 77 (skipped) when
drover cannot be imported. Timeouts are checked from below only."""

import sys

try:
    import drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)

import multiprocessing
import os
import threading
import time
import unittest
from multiprocessing.connection import wait

from drover import context

ctx = multiprocessing.get_context("drover")
LONG = 60


def wait_event(e):
    e.wait(LONG)


def sleep_long():
    time.sleep(LONG)


def start(target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


class TestSentinel(unittest.TestCase):
    def test_ready_once_ended(self):
        e = ctx.Event()
        p = start(wait_event, e)
        s = p.sentinel
        # An int for a process of this node (a pidfd), else an object
        # with fileno() (a job of several nodes puts children elsewhere).
        here = p._popen.node == drover._drover.node_self()
        self.assertEqual(isinstance(s, int), here)
        self.assertEqual(wait([s], 0), [])
        t0 = time.monotonic()
        self.assertEqual(wait([s], 0.2), [])
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        e.set()
        self.assertEqual(wait([s], LONG), [s])
        p.join(LONG)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(wait([s], 0), [s])

    def test_killed_and_several(self):
        e = ctx.Event()
        ps = [start(wait_event, e), start(sleep_long)]
        self.assertEqual(wait([p.sentinel for p in ps], 0.1), [])
        ps[1].kill()
        self.assertEqual(wait([p.sentinel for p in ps], LONG),
                         [ps[1].sentinel])
        e.set()
        for p in ps:
            p.join(LONG)
        self.assertEqual(ps[1].exitcode, -9)
        self.assertEqual(len(wait([p.sentinel for p in ps], 0)), 2)

    def test_closed_process(self):
        p = start(wait_event, ctx.Event())
        p.kill()
        p.join(LONG)
        s = p.sentinel
        fd = s if isinstance(s, int) else s.fileno()
        p.close()
        with self.assertRaises(ValueError):
            p.sentinel
        with self.assertRaises(OSError):
            os.fstat(fd)  # closed with the process object

    def test_not_started(self):
        with self.assertRaises(ValueError):
            ctx.Process(target=sleep_long).sentinel


class FakeRemote:
    """A process of another node, as _Sentinel sees it."""

    def __init__(self):
        self.ended = threading.Event()

    def join(self):
        self.ended.wait(LONG)


class TestRemoteSentinel(unittest.TestCase):
    def test_ended_makes_it_ready_at_once(self):
        proc = FakeRemote()  # never ends by itself
        s = context._Sentinel(proc)
        self.assertEqual(wait([s], 0), [])
        s.ended()  # as Popen.poll() does once the process is gone
        self.assertEqual(wait([s], 0), [s])
        proc.ended.set()
        s.close()
        late = context._Sentinel(FakeRemote())
        late.ended()  # before any fileno()
        self.assertEqual(wait([late], 0), [late])
        late.close()

    def test_thread_closes_the_pipe_at_the_end(self):
        proc = FakeRemote()
        s = context._Sentinel(proc)
        self.assertEqual(wait([s], 0.1), [])
        self.assertEqual(s.fileno(), s.fileno())
        proc.ended.set()
        self.assertEqual(wait([s], LONG), [s])
        s.close()
        s.close()


if __name__ == "__main__":
    unittest.main()
