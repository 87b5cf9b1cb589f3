"""The seed program (torch-scipy-telemetry's telemetry_full.py) written
again with Python's standard multiprocessing, as the baseline telemetry_full
is compared with (bench/demo.sh). Same command line, defaults, structure,
fixed sleeps (5 s before the pools, 10 s after the jobs, the post process
leaving after 10 s without a sample) and output lines; one node (this one).
Extra: --data-dir (the seed reads ../data) and --start-method, and a last
line with the two jobs' wall times.

--start-method drover runs it as the seed runs under Dragon: across the
nodes of a `drover run` job, one telemetry monitor placed on each node (as
the seed places them with Dragon), everything else unchanged.

usage: python3 telemetry_full.py [seed flags] [--data-dir DIR]
       drover run [options] -- python3 telemetry_full.py --start-method drover
"""
import sys


def _wants_drover(argv):
    """Whether the command line asks for the drover start method (read
    before anything else is imported: see below)."""
    for i, a in enumerate(argv):
        if a == "--start-method" and argv[i + 1:i + 2] == ["drover"]:
            return True
        if a == "--start-method=drover":
            return True
    return False


# drover first: the processes of the job are forks of the interpreter at
# this import, and a node that starts one runs the script up to here.
if _wants_drover(sys.argv[1:]):
    import drover
else:
    drover = None

import argparse
import functools
import multiprocessing as mp
import os
import queue
import time

import conv
import mnist
import telem as tm


def get_args():
    p = argparse.ArgumentParser(description="SciPy and MNIST test with telemetry")
    p.add_argument("--scipy_workers", type=int, default=2,
                   help="number of scipy workers (default: 2)")
    p.add_argument("--mnist_workers", type=int, default=2,
                   help="number of mnist workers (default: 2)")
    p.add_argument("--bars", action="store_true", default=False,
                   help="uses tqdm bars to print telemetry info")
    p.add_argument("--no-cuda", action="store_true", default=False,
                   help="disables CUDA training")
    p.add_argument("--size", type=int, default=1024,
                   help="size of the array (default: 1024)")
    p.add_argument("--mem", type=int, default=1024 * 1024 * 1024,
                   help="overall footprint of image dataset to process "
                   "(default: 1024^3)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N",
                   help="input batch size for training (default: 64)")
    p.add_argument("--test-batch-size", type=int, default=1000, metavar="N",
                   help="input batch size for testing (default: 1000)")
    p.add_argument("--epochs", type=int, default=14, metavar="N",
                   help="number of epochs to train (default: 14)")
    p.add_argument("--gamma", type=float, default=0.7, metavar="M",
                   help="Learning rate step gamma (default: 0.7)")
    p.add_argument("--seed", type=int, default=1, metavar="S",
                   help="random seed (default: 1)")
    p.add_argument("--data-dir", default="../data",
                   help="MNIST data: torchvision's root (MNIST/raw or "
                   "FashionMNIST/raw below it) or a directory of IDX files")
    p.add_argument("--start-method", default="fork",
                   choices=["fork", "spawn", "forkserver", "drover"],
                   help="multiprocessing start method (default: fork)")
    return p.parse_args()


def telem_work(q, start_ev, end_ev):
    """The monitor of this node: a sample a second into the shared queue
    from the start event until the end event."""
    host = os.uname().nodename
    print(f"This is a telemetry process on node {host}.", flush=True)
    start_ev.wait()
    while True:
        q.put(tm.call_nvml())
        time.sleep(1)
        if end_ev.is_set():
            print(f"Telemetry process on node {host} exiting ...", flush=True)
            break


def post_process(q, start_ev, end_ev, use_bars):
    """Shows every sample until none came for 10 s."""
    print(f"This is the postprocessing process, {os.uname().nodename}.",
          flush=True)
    start_ev.wait()
    bars = {}
    while True:
        try:
            sample = q.get(timeout=10)
            if use_bars:
                tm.updateTelemDict(sample, bars, deviceID=None)
            else:
                tm.printTelem(sample)
        except queue.Empty:
            print("Post process is exiting", flush=True)
            break
        except Exception as e:  # as the seed: report and go on
            print(f"Exception caught: {e}", flush=True)


def main():
    args = get_args()
    print(f"Hello from main process {os.uname().nodename}.", flush=True)
    runtime = "drover" if drover is not None else "multiprocessing"
    print(f"using {runtime} runtime", flush=True)
    mp.set_start_method(args.start_method)
    # drover: the job's nodes, as the seed asks Dragon's global services;
    # standard multiprocessing: this node only.
    nodeslist = drover.nodes() if drover is not None else [None]
    nnodes = len(nodeslist)
    assert args.mnist_workers > 1
    print(f"Number of nodes: {nnodes}", flush=True)
    print(f"Number of scipy workers: {args.scipy_workers}", flush=True)
    print(f"Number of MNIST workers: {args.mnist_workers}", flush=True)

    q = mp.Queue()
    start_ev, end_ev = mp.Event(), mp.Event()
    post_proc = mp.Process(target=post_process,
                           args=(q, start_ev, end_ev, args.bars))
    post_proc.start()
    procs = []
    for node in nodeslist:
        proc = mp.Process(target=telem_work, args=(q, start_ev, end_ev))
        if node is not None:  # one monitor on each node
            proc.placement = drover.Placement(host=node.hostname)
        proc.start()
        procs.append(proc)

    time.sleep(5)
    scipy_data = conv.init_data(args)
    scipy_pool = mp.Pool(args.scipy_workers)
    manager = mp.Manager()
    device_queue = mnist.buildDeviceQueue(manager, args.no_cuda)
    n = args.mnist_workers
    lr_list = [1 / (n - 1) * i + 0.5 for i in range(n)]
    sweep = functools.partial(mnist.mnist_lr_sweep, args, device_queue)
    mnist_pool = mp.Pool(n)

    start_ev.set()
    print("Launching scipy and mnist jobs", flush=True)
    t0 = time.perf_counter()
    done = {}

    def finished(name):
        return lambda _: done.setdefault(name, time.perf_counter() - t0)

    workers_mnist = mnist_pool.map_async(sweep, lr_list, 1,
                                         callback=finished("mnist"))
    workers_scipy = scipy_pool.map_async(conv.f, scipy_data,
                                         callback=finished("conv"))
    mnist_pool.close()
    mnist_pool.join()
    scipy_pool.close()
    scipy_pool.join()

    time.sleep(10)
    print("Shutting down procs", flush=True)
    end_ev.set()
    for proc in procs:
        proc.join()
    post_proc.join()
    q.close()
    manager.shutdown()

    for result in workers_mnist.get():
        print(f"Final test for learning rate {result[0]}: loss: {result[1]} "
              f"accuracy: {result[2]}", flush=True)
    print(f"Baseline jobs: conv {done.get('conv', 0):.2f} s, "
          f"MNIST {done.get('mnist', 0):.2f} s", flush=True)


if __name__ == "__main__":
    main()
