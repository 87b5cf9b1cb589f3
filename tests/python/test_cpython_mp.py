"""CPython's own multiprocessing tests (Debian: libpython3.11-testsuite),
run with a start method: "drover" by default.

    test_cpython_mp.py [--method M] [CLASS...]

Without classes, runs the classes of PASSING (those the drover start
method passes so far); KNOWN lists single tests that are skipped with
drover, each with its reason (docs/PYTHON.md repeats them). Exits 77
(skipped) when drover or the test suite cannot be imported."""

import faulthandler
import sys

METHOD = "drover"
if len(sys.argv) > 2 and sys.argv[1] == "--method":
    METHOD = sys.argv[2]
    del sys.argv[1:3]

try:
    if METHOD == "drover":
        import drover  # noqa: F401  (first: before threads start)
    from test import _test_multiprocessing as mpt
except ImportError as e:
    print("skipped: %s" % e)
    sys.exit(77)

import unittest

# The classes the issue names, in the order it names them.
ALL = ["WithProcessesTest" + n for n in (
    "Process", "Queue", "Lock", "Semaphore", "Condition", "Event", "Barrier",
    "Value", "Array", "Pool", "PoolWorkerErrors", "PoolWorkerLifetime")] + [
    "TestInitializers", "TestSimpleQueue", "TestTimeouts"]

# The classes drover passes: all of them.
PASSING = ALL

# "Class.test": why it does not hold for drover (skipped with drover only).
KNOWN = {
    "WithProcessesTestQueue.test_queue_feeder_donot_stop_onexc":
        "put() pickles before it returns (no feeder thread), so a pickling "
        "error is raised by put() itself, not printed by a feeder",
}

# The same, only when the job spans nodes (tests/python/two_nodes.py runs
# PASSING across two emulated nodes: round robin puts children on both).
KNOWN_MULTINODE = {
    "WithProcessesTestProcess.test_child_fd_inflation":
        "a child on the queue's node holds the queue's shared-memory "
        "descriptor, one on another node reaches it through a relay "
        "without one: counts differ by node (they do not grow with the "
        "number of children, which is what the test checks)",
}
# Their helpers (_DummyList, and Bunch, which counts in one) keep a count
# in multiprocessing.heap memory, a mapping of a file that a process on
# another node cannot map: the children there fail, and Bunch waits for
# them for ever.
for _test in ("barrier", "barrier_10", "wait_return", "action", "abort",
              "reset", "abort_and_reset", "timeout", "default_timeout"):
    KNOWN_MULTINODE["WithProcessesTestBarrier.test_" + _test] = (
        "the test's _DummyList lives in multiprocessing.heap memory, which "
        "a process on another node cannot map")

mpt.install_tests_in_module_dict(globals(), METHOD)

if METHOD == "drover":
    if len(drover.nodes()) > 1:
        KNOWN.update(KNOWN_MULTINODE)
    for _name, _why in KNOWN.items():
        _cls, _test = _name.split(".")
        setattr(globals()[_cls], _test,
                unittest.skip("drover: " + _why)(getattr(globals()[_cls],
                                                         _test)))

if __name__ == "__main__":
    # A hang prints where every thread of this process waits, and ends the
    # run before the caller's timeout (the suite takes well under a minute).
    faulthandler.dump_traceback_later(240, exit=True)
    names = sys.argv[1:] or PASSING
    unittest.main(argv=[sys.argv[0]] + names, verbosity=1)
