"""pool_empty_tasks, Python side: multiprocessing.Pool (spawn) mapping an
empty function with chunksize 1 over one worker per usable CPU. Prints
"<tasks/s> <workers> <items>": the best of ROUNDS timed maps.
Usage: python3 pool_baseline.py [ITEMS [ROUNDS]]"""
import multiprocessing as mp
import os
import sys
import time


def empty(x):
    return None


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    workers = len(os.sched_getaffinity(0))
    ctx = mp.get_context("spawn")
    best = 0.0
    with ctx.Pool(workers) as pool:
        pool.map(empty, range(n // 10 + 1), chunksize=1)  # warm up
        for _ in range(rounds):
            t0 = time.perf_counter()
            pool.map(empty, range(n), chunksize=1)
            best = max(best, n / (time.perf_counter() - t0))
    print(f"{best:.0f} {workers} {n}")


if __name__ == "__main__":
    main()
