"""Python processes across two nodes emulated on this host (two_nodes.py):
`drover run` runs tests/python/multinode_prog.py, whose processes land on
both nodes, pass a Queue and an Event, and end with the exit codes,
signals and exceptions they should; their output reaches drover run.
Exits 77 (skipped) when drover cannot be imported."""

import importlib.util
import json
import os
import subprocess
import sys
import unittest

# Not imported here: this process stays out of any job.
if importlib.util.find_spec("drover") is None:
    print("skipped: the drover package is not importable")
    sys.exit(77)

import two_nodes

HERE = os.path.dirname(os.path.abspath(__file__))


class TestTwoNodes(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # From another directory, with a mark in the environment that the
        # agents' launch template removes.
        cls.cwd = os.path.dirname(HERE)
        r = two_nodes.run([sys.executable, "python/multinode_prog.py",
                           "an-arg"], cwd=cls.cwd,
                          env={"TWO_NODES_MARK": "main"},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120)
        cls.r = r
        lines = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
        cls.out = json.loads(lines[0][7:]) if lines else None

    def setUp(self):
        if self.out is None:
            self.fail("no result: exit %d\nstdout:\n%s\nstderr:\n%s"
                      % (self.r.returncode, self.r.stdout, self.r.stderr))

    def test_exit_status(self):
        self.assertEqual(self.r.returncode, 0, self.r.stderr)

    def test_nodes(self):
        self.assertEqual(self.out["nodes"], [[0, "py-a"], [1, "py-b"]])

    def test_round_robin_and_host(self):
        self.assertEqual(self.out["procs"], [10, 11, 12, 13, 20, 30])
        self.assertEqual(self.out["node"], 0)

    def test_seen_in_the_processes(self):
        seen = self.out["seen"]
        self.assertEqual([(d["node"], d["host"]) for d in seen],
                         [(0, "py-a")] * 3 + [(1, "py-b")] * 3)
        for d in seen:
            # The main process's directory, environment and sys.argv.
            self.assertEqual(d["cwd"], self.cwd)
            self.assertEqual(d["mark"], "main")
            self.assertEqual(d["argv"], ["an-arg"])
            self.assertIsNone(d["task"])
        # Not the agent's stdin (the pipe its launch read the keys from).
        for d in seen[3:]:
            self.assertEqual(d["stdin"], "/dev/null")

    def test_signals(self):
        self.assertEqual(self.out["signals"],
                         [["terminate", 1, -15], ["kill", 1, -9]])

    def test_exception(self):
        self.assertEqual(self.out["fail"], [1, 1])
        self.assertIn("RuntimeError: failing on node 1", self.r.stderr)
        self.assertIn("Process DroverProcess-", self.r.stderr)

    def test_nested(self):
        self.assertEqual(self.out["nest"],
                         [1, 0, [["leaf", 0], ["nested exit", 0]]])

    def test_output(self):
        self.assertEqual(self.r.stdout.count("hello from py-a"), 3)
        self.assertEqual(self.r.stdout.count("hello from py-b"), 3)


if __name__ == "__main__":
    unittest.main()
