#!/usr/bin/python3
"""SciPy side of bench/conv2d.sh (Debian's python3-scipy).

  conv2d_scipy.py one DIR REPEAT     make DIR/image.npy (1024x1024 normal)
                                     and DIR/filter.npy (4x4), print the
                                     median seconds of
                                     convolve2d(image, filter)[::5, ::5]
  conv2d_scipy.py check DIR OUT.npy  exit 1 unless OUT.npy matches SciPy
                                     within 1e-12 relative
  conv2d_scipy.py job MEM SIZE N     the seed's job: MEM / SIZE**2 zero
                                     images with a normal 4x4 filter each,
                                     through multiprocessing.Pool(N); print
                                     images and seconds
"""
import multiprocessing as mp
import os
import sys
import time

import numpy as np
import scipy.signal


def seed_f(args):
    """conv.f of the seed: one (image, filter) item."""
    image, random_filter = args
    return scipy.signal.convolve2d(image, random_filter)[::5, ::5]


def one(d, repeat):
    rng = np.random.default_rng(1)
    image = rng.normal(size=(1024, 1024))
    filt = rng.normal(size=(4, 4))
    np.save(os.path.join(d, "image.npy"), image)
    np.save(os.path.join(d, "filter.npy"), filt)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        scipy.signal.convolve2d(image, filt)[::5, ::5]
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"median {times[len(times) // 2]:.9f} best {times[0]:.9f}")


def check(d, out):
    image = np.load(os.path.join(d, "image.npy"))
    filt = np.load(os.path.join(d, "filter.npy"))
    want = scipy.signal.convolve2d(image, filt)[::5, ::5]
    got = np.load(out)
    if got.shape != want.shape:
        sys.exit(f"shape {got.shape}, SciPy {want.shape}")
    rel = np.abs(got - want).max() / np.abs(want).max()
    if not rel <= 1e-12:
        sys.exit(f"relative difference {rel:g} from SciPy")


def job(mem, size, workers):
    """As the seed's conv.init_data and telemetry_full.py's map_async."""
    n = mem // size**2
    image = np.zeros((size, size))
    np.random.seed(1)
    filters = [np.random.normal(size=(4, 4)) for _ in range(n)]
    data = zip([image] * n, filters)
    with mp.Pool(workers) as pool:
        t0 = time.perf_counter()
        res = pool.map_async(seed_f, data).get()
        dt = time.perf_counter() - t0
    assert len(res) == n and res[0].shape == ((size + 2) // 5 + 1,) * 2
    print(f"images {n} seconds {dt:.6f}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "one":
        one(sys.argv[2], int(sys.argv[3]))
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3])
    elif cmd == "job":
        job(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {cmd}")
