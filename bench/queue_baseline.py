"""Queue benchmarks, baseline side: the same measurements as queue_bench.c
with multiprocessing.Queue and the spawn start method. Prints one number,
the median of RUNS runs after a warm-up run.

    queue_baseline.py rtt BYTES COUNT   -> microseconds per round trip
    queue_baseline.py bw BYTES COUNT    -> GB/s one way (10^9 bytes/s)
"""
import multiprocessing as mp
import os
import sys
import time
from statistics import median

RUNS = 5


def echo(a, b):
    while True:
        m = a.get()
        if m is None:
            return
        b.put(m)


def produce(q, nbytes, count):
    msg = b"\1" * nbytes
    for _ in range((RUNS + 1) * count):
        q.put(msg)


def rtt(nbytes, count):
    a, b = mp.Queue(), mp.Queue()
    p = mp.Process(target=echo, args=(a, b))
    p.start()
    msg = b"\0" * nbytes
    runs = []
    for _ in range(RUNS + 1):
        t0 = time.perf_counter()
        for _ in range(count):
            a.put(msg)
            b.get()
        runs.append((time.perf_counter() - t0) * 1e6 / count)
    a.put(None)
    p.join()
    return median(runs[1:])


def bandwidth(nbytes, count):
    q = mp.Queue(int(os.environ.get("DROVER_BENCH_MAXSIZE", "2")))
    p = mp.Process(target=produce, args=(q, nbytes, count))
    p.start()
    runs = []
    for _ in range(RUNS + 1):
        q.get()  # the clock starts at a first message
        t0 = time.perf_counter()
        for _ in range(count - 1):
            q.get()
        runs.append(nbytes * (count - 1) / (time.perf_counter() - t0) / 1e9)
    p.join()
    return median(runs[1:])


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("rtt", "bw"):
        print("usage: queue_baseline.py rtt|bw BYTES COUNT", file=sys.stderr)
        return 2
    mp.set_start_method("spawn")
    nbytes, count = int(sys.argv[2]), int(sys.argv[3])
    f = rtt if sys.argv[1] == "rtt" else bandwidth
    print("%.3f" % f(nbytes, count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
