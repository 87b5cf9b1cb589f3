"""Baseline of process_start: multiprocessing.Process started and joined
one after another, running an empty function, with the start method
METHOD (default forkserver, Python's fastest that does not fork the
caller). Usage: process_start.py SECONDS [METHOD]; prints processes per
second."""
import multiprocessing as mp
import sys
import time


def empty():
    pass


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    mp.set_start_method(sys.argv[2] if len(sys.argv) > 2 else "forkserver")
    for _ in range(3):
        p = mp.Process(target=empty)
        p.start()
        p.join()
    n = 0
    t0 = time.perf_counter()
    while True:
        p = mp.Process(target=empty)
        p.start()
        p.join()
        n += 1
        t = time.perf_counter() - t0
        if t >= secs:
            break
    print(f"{n / t:.1f}")


if __name__ == "__main__":
    main()
