"""drover.nodes() and Placement on one node (a private job).

Run by CTest like test_process.py; exits 77 (skipped) when drover cannot
be imported. tests/python/test_multinode.py places processes across two
emulated nodes."""

import sys

try:
    import drover
    from drover import _drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)

import errno
import multiprocessing
import os
import pickle
import socket
import unittest

ctx = multiprocessing.get_context("drover")


def report_node(q):
    n = drover.current_node()
    q.put((n.index, n.hostname, os.environ.get("CUDA_VISIBLE_DEVICES"),
           os.environ.get("ROCR_VISIBLE_DEVICES")))


class TestNodes(unittest.TestCase):

    def test_one_node(self):
        ns = drover.nodes()
        self.assertEqual(len(ns), 1)
        n = ns[0]
        self.assertIsInstance(n, drover.Node)
        self.assertEqual(n.index, 0)
        want = os.environ.get("DROVER_NODE_NAME") or socket.gethostname()
        self.assertEqual(n.hostname, want[:63])
        self.assertEqual(n.cpus, len(os.sched_getaffinity(0)))
        self.assertGreaterEqual(n.gpus, 0)
        self.assertEqual(n.address, "")
        self.assertEqual(drover.current_node(), n)

    def test_node_in_child(self):
        q = ctx.Queue()
        p = ctx.Process(target=report_node, args=(q,))
        self.assertIsNone(p.node)
        p.start()
        p.join()
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(p.node, 0)
        self.assertEqual(q.get(timeout=10)[:2],
                         (0, drover.nodes()[0].hostname))


class TestPlacement(unittest.TestCase):

    def run_at(self, where, **kw):
        q = ctx.Queue()
        p = ctx.Process(target=report_node, args=(q,), placement=where, **kw)
        p.start()
        p.join()
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(p.node, 0)
        return q.get(timeout=10)

    def test_every_policy_on_one_node(self):
        host = drover.nodes()[0].hostname
        for where in (None, drover.Placement(), drover.Placement("default"),
                      drover.Placement("round-robin"),
                      drover.Placement(drover.Placement.BLOCK),
                      drover.Placement("local"), drover.Placement(host=0),
                      drover.Placement(host=host),
                      drover.Placement(host=drover.nodes()[0])):
            with self.subTest(where=where):
                self.assertEqual(self.run_at(where)[0], 0)

    def test_gpu(self):
        got = self.run_at(drover.Placement(gpu=0))
        self.assertEqual(got[2:], ("0", "0"))
        got = self.run_at(drover.Placement())
        self.assertEqual(got[2:], (os.environ.get("CUDA_VISIBLE_DEVICES"),
                                   os.environ.get("ROCR_VISIBLE_DEVICES")))

    def test_gpu_past_the_count(self):
        gpus = drover.nodes()[0].gpus
        if gpus == 0:
            self.skipTest("this node has no GPU to count past")
        p = ctx.Process(target=report_node, args=(ctx.Queue(),),
                        placement=drover.Placement(gpu=gpus))
        with self.assertRaisesRegex(OSError, "has %d GPU" % gpus):
            p.start()

    def test_no_such_node(self):
        p = ctx.Process(target=report_node, args=(ctx.Queue(),),
                        placement=drover.Placement(host=1))
        with self.assertRaisesRegex(OSError, "no node 1") as cm:
            p.start()
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        p = ctx.Process(target=report_node, args=(ctx.Queue(),),
                        placement=drover.Placement(host="no-such-host"))
        with self.assertRaisesRegex(FileNotFoundError, "no-such-host"):
            p.start()

    def test_bad_arguments(self):
        P = drover.Placement
        self.assertRaises(ValueError, P, "scatter")
        self.assertRaises(ValueError, P, "block", host=0)
        self.assertRaises(ValueError, P, host=-1)
        self.assertRaises(ValueError, P, host="")
        self.assertRaises(TypeError, P, host=1.5)
        self.assertRaises(TypeError, P, host=True)
        self.assertRaises(ValueError, P, gpu=-1)
        self.assertRaises(TypeError, P, gpu="0")
        p = ctx.Process(target=report_node, args=(ctx.Queue(),),
                        placement="node0")
        with self.assertRaisesRegex(TypeError, "drover.Placement"):
            p.start()
        self.assertRaises(TypeError, _drover.start, b"", "node0")

    def test_attribute_and_with_block(self):
        nowhere = drover.Placement(host="no-such-host")
        p = ctx.Process(target=report_node, args=(ctx.Queue(),))
        p.placement = nowhere
        self.assertRaises(FileNotFoundError, p.start)
        self.assertIsNone(drover.current_placement())
        with nowhere as w:
            self.assertIs(w, nowhere)
            self.assertIs(drover.current_placement(), nowhere)
            p = ctx.Process(target=report_node, args=(ctx.Queue(),))
            self.assertRaises(FileNotFoundError, p.start)
            with drover.Placement(host=0):
                self.assertEqual(self.run_at(None)[0], 0)
            # The Process's own placement wins over the block's.
            self.assertEqual(self.run_at(drover.Placement("local"))[0], 0)
            self.assertIs(drover.current_placement(), nowhere)
        self.assertIsNone(drover.current_placement())
        self.assertEqual(self.run_at(None)[0], 0)

    def test_value(self):
        a = drover.Placement(host="n1", gpu=2)
        self.assertEqual(a, drover.Placement(host="n1", gpu=2))
        self.assertNotEqual(a, drover.Placement(host="n1"))
        self.assertEqual(pickle.loads(pickle.dumps(a)), a)
        self.assertEqual(repr(a), "Placement(host='n1', gpu=2)")
        self.assertEqual(repr(drover.Placement("block")),
                         "Placement('block')")
        self.assertEqual(len({a, drover.Placement(host="n1", gpu=2)}), 1)


if __name__ == "__main__":
    unittest.main()
