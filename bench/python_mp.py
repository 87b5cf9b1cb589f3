"""One side of a Python-level benchmark (bench/python.sh runs the sides
interleaved): python_mp.py METHOD NAME SECONDS prints one number.

METHOD: drover, fork, forkserver or spawn (multiprocessing's start
method; drover's is registered by importing drover first). NAME:
  queue_rtt     round trips of a small object (an int) through two
                queues between this process and a child, us each
  queue_8mib    8 MiB NumPy arrays through one queue to a child that
                reads every byte (sum), MB/s
  process       processes started and joined one after another, each
                running an empty function, processes/s
  pool_map_10us Pool(2).map of tasks of 10 us each (a busy loop) with
                the default chunksize, tasks/s
  process_burst 8 processes started one after another, then joined, in
                this fresh interpreter (no warm-up: what a start method
                brings up at its first start is in it), processes/s
Each but process_burst measures for about SECONDS after one warm-up
round. With
DROVER_BENCH_NODE=N (drover only) every child starts on node N."""

import sys

METHOD, NAME, SECONDS = sys.argv[1], sys.argv[2], float(sys.argv[3])
if METHOD == "drover":
    import drover  # noqa: F401  (first: before any thread)

import multiprocessing as mp
import time

ctx = mp.get_context(METHOD)


def echo(qin, qout):
    while True:
        obj = qin.get()
        if obj is None:
            return
        qout.put(obj)


def drain(q, done):
    import numpy
    while True:
        a = q.get()
        if a is None:
            return
        done.put(int(a.sum()) % 2)


def nothing():
    pass


def spin_10us(_):
    end = time.perf_counter() + 10e-6
    while time.perf_counter() < end:
        pass


def timed(step, unit_per_round):
    """Run step() in rounds until SECONDS pass; rounds per second."""
    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < SECONDS:
        step()
        n += 1
    return n * unit_per_round / (time.perf_counter() - t0)


def queue_rtt():
    a, b = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=echo, args=(a, b))
    p.start()

    def step():
        for i in range(100):
            a.put(i)
            b.get()
    rate = timed(step, 100)
    a.put(None)
    p.join()
    return 1e6 / rate


def queue_8mib():
    import numpy
    arr = numpy.ones(8 << 20, dtype=numpy.uint8)
    q, done = ctx.Queue(2), ctx.Queue()
    p = ctx.Process(target=drain, args=(q, done))
    p.start()

    def step():
        for _ in range(4):
            q.put(arr)
        for _ in range(4):
            done.get()
    rate = timed(step, 4 * 8 * 1.048576)
    q.put(None)
    p.join()
    return rate


def process():
    def step():
        p = ctx.Process(target=nothing)
        p.start()
        p.join()
    return timed(step, 1)


def process_burst():
    t0 = time.perf_counter()
    ps = [ctx.Process(target=nothing) for _ in range(8)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return 8 / (time.perf_counter() - t0)


def pool_map_10us():
    with ctx.Pool(2) as pool:
        return timed(lambda: pool.map(spin_10us, range(10000)), 10000)


if __name__ == "__main__":
    import contextlib
    import os
    node = os.environ.get("DROVER_BENCH_NODE")
    where = contextlib.nullcontext()
    if METHOD == "drover" and node is not None:
        where = drover.Placement(host=int(node))
    with where:
        print("%.6g" % globals()[NAME]())
