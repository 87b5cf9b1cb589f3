"""The SciPy convolution job of the Python baseline of telemetry_full
(bench/seed), as the seed's conv.py describes it: mem / size**2 zero images
of size x size, each with its own random normal 4x4 filter, each convolved
with scipy.signal.convolve2d and subsampled every 5th row and column."""
import numpy as np
from scipy import signal


def init_data(args):
    nimages = int(float(args.mem) / float(args.size * args.size))
    print(f"Number of images: {nimages}", flush=True)
    images = [np.zeros((args.size, args.size)) for _ in range(nimages)]
    filters = [np.random.normal(size=(4, 4)) for _ in range(nimages)]
    return list(zip(images, filters))


def f(pair):
    image, random_filter = pair
    return signal.convolve2d(image, random_filter)[::5, ::5]
