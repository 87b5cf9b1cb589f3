"""pool_map_10us, Python side: Pool.map of busy 10 us tasks with the
default chunksize, one worker per usable CPU, for each start method named
(default: fork forkserver spawn, and drover when it imports). Prints one
line per method: "<method> <tasks/s steady> <tasks/s with start> <workers>
<items>", the best of ROUNDS maps on a started pool, and the best of ROUNDS
runs of pool start + map + close/join.
Usage: python3 pool_map.py [ITEMS [ROUNDS [METHOD...]]]"""
import os
import sys
import time

if "drover" in sys.argv[3:] or len(sys.argv) <= 3:
    try:
        import drover  # noqa: F401  (first: before threads start)
    except ImportError:
        pass

import multiprocessing as mp


def busy(x):
    end = time.perf_counter() + 10e-6
    while time.perf_counter() < end:
        pass
    return x


def one(method, n, rounds, workers):
    ctx = mp.get_context(method)
    items = range(n)
    steady = 0.0
    with ctx.Pool(workers) as pool:
        pool.map(busy, range(1000))  # warm up
        for _ in range(rounds):
            t0 = time.perf_counter()
            out = pool.map(busy, items)
            steady = max(steady, n / (time.perf_counter() - t0))
            assert out[-1] == n - 1
    cold = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        pool = ctx.Pool(workers)
        pool.map(busy, items)
        pool.close()
        pool.join()
        cold = max(cold, n / (time.perf_counter() - t0))
    return steady, cold


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    methods = sys.argv[3:] or (
        [m for m in ("fork", "forkserver", "spawn")
         if m in mp.get_all_start_methods()]
        + (["drover"] if "drover" in sys.modules else []))
    workers = len(os.sched_getaffinity(0))
    t0 = time.perf_counter()
    for i in range(n):
        busy(i)
    serial = n / (time.perf_counter() - t0)
    print(f"serial {serial:.0f} tasks/s (ideal with {workers} workers: "
          f"{serial * workers:.0f})", flush=True)
    for m in methods:
        steady, cold = one(m, n, rounds, workers)
        print(f"{m} {steady:.0f} {cold:.0f} {workers} {n}", flush=True)


if __name__ == "__main__":
    main()
