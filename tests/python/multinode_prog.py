"""The program tests/python/test_multinode.py runs under `drover run`
across two emulated nodes (two_nodes.py), and
tests/integration/test_multinode_slurm.sh under Slurm: processes on both nodes, by the
default round robin and by placement, pass a Queue and an Event, end with
exit codes, signals and an exception, and one on the other node starts a
process of its own. Prints one JSON line of what it saw."""

import drover

import json
import multiprocessing as mp
import os
import sys


def work(q, ev, code):
    # Every process waits for the event the main process sets after
    # starting them all, so that they run at once on both nodes.
    if not ev.wait(60):
        sys.exit(99)
    n = drover.current_node()
    q.put({"node": n.index, "host": n.hostname, "cwd": os.getcwd(),
           "mark": os.environ.get("TWO_NODES_MARK"),
           "argv": sys.argv[1:], "task": os.environ.get("DROVER_TASK"),
           "stdin": os.readlink("/proc/self/fd/0")})
    print("hello from %s" % n.hostname, flush=True)
    sys.exit(code)


def fail():
    raise RuntimeError("failing on node %d" % drover.current_node().index)


def nest(q):
    # A process on node 1 starting one of its own: round robin from node 1
    # begins again at node 0.
    p = mp.get_context().Process(target=leaf, args=(q,),
                                 placement=drover.Placement(host=0))
    p.start()
    p.join()
    q.put(("nested exit", p.exitcode))


def leaf(q):
    q.put(("leaf", drover.current_node().index))


def main():
    # Unchanged multiprocessing code but for the start method (round robin
    # over the nodes), then a `with` block and drover's own Process, which
    # takes a placement and tells its node.
    mp.set_start_method("drover")
    ctx = mp.get_context()
    q, ev = mp.Queue(), mp.Event()
    out = {"nodes": [[n.index, n.hostname] for n in drover.nodes()]}
    procs = [mp.Process(target=work, args=(q, ev, 10 + i)) for i in range(4)]
    for p in procs:
        p.start()
    with drover.Placement(host=drover.nodes()[1].hostname):
        procs.append(mp.Process(target=work, args=(q, ev, 20)))
        procs[-1].start()
    procs.append(ctx.Process(target=work, args=(q, ev, 30),
                             placement=drover.Placement(host=0)))
    procs[-1].start()
    ev.set()
    for p in procs:
        p.join(60)
    out["procs"] = [p.exitcode for p in procs]
    out["node"] = procs[-1].node
    out["seen"] = sorted((q.get(timeout=10) for _ in procs),
                         key=lambda d: (d["node"], d["host"]))
    far = drover.Placement(host=1)
    sleepers = []
    for how in ("terminate", "kill"):
        ev2 = mp.Event()
        p = ctx.Process(target=ev2.wait, args=(120,), placement=far)
        p.start()
        getattr(p, how)()
        p.join(60)
        sleepers.append([how, p.node, p.exitcode])
    out["signals"] = sleepers
    p = ctx.Process(target=fail, placement=far)
    p.start()
    p.join(60)
    out["fail"] = [p.node, p.exitcode]
    p = ctx.Process(target=nest, args=(q,), placement=far)
    p.start()
    p.join(60)
    out["nest"] = [p.node, p.exitcode, sorted(q.get(timeout=10)
                                              for _ in range(2))]
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
