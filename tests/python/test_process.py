"""The "drover" start method: registration and multiprocessing.Process.

Run by CTest with the interpreter the extension was built for and
PYTHONPATH=<build>/python; exits 77 (skipped) when drover cannot be
imported. Every target below is defined after `import drover`, so each
test also checks that the child finds __main__'s functions (spawn's
semantics)."""

import sys

try:
    import drover
    from drover import _drover
except ImportError as e:
    print("skipped: the drover package is not importable: %s" % e)
    sys.exit(77)

import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import tempfile
import time
import unittest

ctx = multiprocessing.get_context("drover")


def write_args(path, *args, **kwargs):
    with open(path, "w") as f:
        f.write(repr((os.getpid(), args, sorted(kwargs.items()))))


def exit_with(code):
    sys.exit(code)


def raise_into(path):
    sys.stderr = open(path, "w")
    raise ValueError("boom from the child")


def kill_self(sig):
    os.kill(os.getpid(), sig)
    time.sleep(30)


def sleep_long():
    time.sleep(60)


def describe(path):
    p = multiprocessing.current_process()
    with open(path, "w") as f:
        f.write(repr((p.name, p.daemon, multiprocessing.parent_process().pid)))


def write_random(path):
    import random
    with open(path, "w") as f:
        f.write(repr(random.random()))


def noop(_):
    pass


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="drover-py-")
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def read(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def run_process(self, target, *args, **kwargs):
        p = ctx.Process(target=target, args=args, **kwargs)
        p.start()
        self.addCleanup(lambda: p.is_alive() and p.kill())
        return p


class TestRegistration(unittest.TestCase):
    def test_import_joins_the_job(self):
        self.assertEqual(_drover.node_self(), 0)
        self.assertEqual(drover.VERSION, _drover.VERSION)

    def test_get_context(self):
        self.assertIsInstance(ctx, drover.DroverContext)
        self.assertEqual(ctx.get_start_method(), "drover")
        self.assertIs(ctx.Process, drover.DroverProcess)

    def test_set_start_method(self):
        old = multiprocessing.get_start_method(allow_none=True)
        multiprocessing.set_start_method("drover", force=True)
        try:
            self.assertEqual(multiprocessing.get_start_method(), "drover")
            p = multiprocessing.Process(target=exit_with, args=(4,))
            p.start()
            p.join()
            self.assertEqual(p.exitcode, 4)
        finally:
            multiprocessing.set_start_method(old, force=True)


class TestProcess(TempDirTest):
    def test_target_runs_with_args_in_a_child(self):
        p = self.run_process(write_args, self.path("out"), 1, "two",
                             kwargs={"three": [3]})
        p.join()
        self.assertEqual(p.exitcode, 0)
        pid, args, kwargs = eval(self.read("out"))
        self.assertNotEqual(pid, os.getpid())
        self.assertEqual(pid, p.pid)
        self.assertEqual(args, (1, "two"))
        self.assertEqual(kwargs, [("three", [3])])

    def test_exitcode_of_sys_exit(self):
        p = self.run_process(exit_with, 3)
        p.join()
        self.assertEqual(p.exitcode, 3)
        self.assertFalse(p.is_alive())

    def test_exception_is_exit_code_1_with_traceback(self):
        p = self.run_process(raise_into, self.path("err"))
        p.join()
        self.assertEqual(p.exitcode, 1)
        err = self.read("err")
        self.assertIn("Process %s:" % p.name, err)
        self.assertIn("Traceback", err)
        self.assertIn("ValueError: boom from the child", err)

    def test_killed_by_a_signal_is_minus_signal(self):
        p = self.run_process(kill_self, signal.SIGKILL)
        p.join()
        self.assertEqual(p.exitcode, -signal.SIGKILL)

    def test_join_timeout_is_alive_terminate(self):
        p = self.run_process(sleep_long)
        self.assertTrue(p.is_alive())
        t0 = time.monotonic()
        p.join(0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertIsNone(p.exitcode)
        p.terminate()
        p.join(30)
        self.assertEqual(p.exitcode, -signal.SIGTERM)
        self.assertFalse(p.is_alive())
        p.terminate()  # once ended: no error, as multiprocessing

    def test_kill(self):
        p = self.run_process(sleep_long)
        p.kill()
        p.join(30)
        self.assertEqual(p.exitcode, -signal.SIGKILL)

    def test_name_daemon_parent(self):
        p = self.run_process(describe, self.path("d"), name="worker-x",
                             daemon=True)
        p.join()
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(eval(self.read("d")), ("worker-x", True, os.getpid()))

    def test_before_start_and_close(self):
        p = ctx.Process(target=exit_with, args=(0,))
        self.assertIsNone(p.exitcode)
        self.assertIsNone(p.pid)
        self.assertFalse(p.is_alive())
        p.start()
        p.join()
        p.close()
        with self.assertRaises(ValueError):
            p.is_alive()

    def test_many_processes(self):
        ps = [self.run_process(exit_with, i % 7) for i in range(24)]
        for p in ps:
            p.join(60)
        self.assertEqual([p.exitcode for p in ps], [i % 7 for i in range(24)])

    def test_fork_hooks_run_in_children(self):
        # random reseeds through os.register_at_fork: children differ.
        ps = [self.run_process(write_random, self.path("r%d" % i))
              for i in range(3)]
        for p in ps:
            p.join(60)
        values = {self.read("r%d" % i) for i in range(3)}
        self.assertEqual(len(values), 3)

    def test_unpicklable_target_fails_in_start(self):
        p = ctx.Process(target=lambda: None)
        with self.assertRaises((pickle.PicklingError, AttributeError)):
            p.start()
        self.assertIsNone(p.pid)


def send_through(conn):
    conn.send("through a descriptor")
    conn.close()


class TestMainScript(TempDirTest):
    """drover.mainscript: a child runs the main script from the code the
    parent compiled, once per version of the file."""

    def script(self, value):
        path = self.path("main.py")
        with open(path, "w") as f:
            f.write("VALUE = %r\n" % value)
        os.utime(path, ns=(0, len(value) * 10**9))  # a new version each time
        return path

    def test_children_run_the_code_sent_with_them(self):
        from drover import mainscript
        import runpy
        path = self.script("first")
        prep = {"init_main_from_path": path}
        mainscript.add_code(prep)
        self.script("second, not compiled by the child")
        with mainscript.use_code(dict(prep)):
            self.assertEqual(runpy.run_path(path)["VALUE"], "first")
        # Outside it, and for a file of another version, the file again.
        self.assertEqual(runpy.run_path(path)["VALUE"],
                         "second, not compiled by the child")
        again = {"init_main_from_path": path}
        mainscript.add_code(again)
        with mainscript.use_code(again):
            self.assertEqual(runpy.run_path(path)["VALUE"],
                             "second, not compiled by the child")

    def test_another_interpreter_compiles_the_file(self):
        from drover import mainscript
        import runpy
        path = self.script("on disk")
        prep = {"init_main_from_path": path}
        mainscript.add_code(prep)
        self.script("changed on disk")
        key, sent = next((k, v) for k, v in prep.items()
                         if k != "init_main_from_path")
        prep[key] = (b"\0\0\0\0",) + sent[1:]  # another marshal format
        with mainscript.use_code(prep):
            self.assertEqual(runpy.run_path(path)["VALUE"], "changed on disk")

    def test_an_unreadable_script_adds_nothing(self):
        from drover import mainscript
        prep = {"init_main_from_path": self.path("missing.py")}
        mainscript.add_code(prep)
        self.assertEqual(list(prep), ["init_main_from_path"])


class TestDescriptors(unittest.TestCase):
    def test_descriptors_in_arguments_reach_the_child(self):
        # A standard Pipe holds an OS descriptor: it passes to a child on
        # this host through multiprocessing's resource sharer.
        r, w = multiprocessing.Pipe(duplex=False)
        self.addCleanup(r.close)
        p = ctx.Process(target=send_through, args=(w,))
        p.start()
        w.close()
        self.assertTrue(r.poll(60))
        self.assertEqual(r.recv(), "through a descriptor")
        p.join(60)
        self.assertEqual(p.exitcode, 0)


if __name__ == "__main__":
    unittest.main()
