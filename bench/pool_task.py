"""pool_task_*, Python's side: multiprocessing.Pool (fork: the start
method its pools run fastest with here) mapping N tasks of US
microseconds each (a busy wait on perf_counter, as bench/pool_task.c's)
with the default chunksize over one worker per usable CPU. Prints the
tasks/s of the best of 3 maps after a warm-up one.
Usage: python3 pool_task.py US N"""
import multiprocessing as mp
import os
import sys
import time


def spin(us):
    end = time.perf_counter() + us * 1e-6
    while us and time.perf_counter() < end:
        pass


def main():
    us, n = int(sys.argv[1]), int(sys.argv[2])
    workers = len(os.sched_getaffinity(0))
    best = 0.0
    with mp.get_context("fork").Pool(workers) as pool:
        pool.map(spin, [us] * (n // 10 + 1))
        for _ in range(3):
            t0 = time.perf_counter()
            pool.map(spin, [us] * n)
            best = max(best, n / (time.perf_counter() - t0))
    print("%.0f" % best)


if __name__ == "__main__":
    main()
