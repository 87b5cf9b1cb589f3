"""PyTorch baseline for the mnist benchmarks: the network, optimiser and
schedule of PyTorch's MNIST example (as the seed runs it), with the dataset
preloaded as tensors on the training device (no DataLoader), so that only
the training itself is compared. Prints the same per-epoch lines as
mnist_train, then the training throughput.

--mode (CUDA only): eager runs the step op by op; graph captures the whole
step (the batch's gather, forward, backward and Adadelta's update, with
its learning rate read from the device) in one CUDA graph replayed per
batch; compile does the same with the network compiled by torch.compile
first. The capture's warm-up steps are undone before training; an
epoch's last, shorter batch runs op by op.

--tf32 lets matrix products (and cuDNN's convolutions, its default) use
TF32 on the GPU, the precision of mnist_train's default CUDA path.

usage: python3 mnist_torch.py --data-dir DIR [--device cpu|cuda]
       [--mode eager|graph|compile] [--threads N] [--epochs N] [--lr LR]
       [--seed S] [--max-batches N] [--tf32]
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR

# The network is the one the seed's Python program trains (bench/seed).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed"))
from mnist import Net  # noqa: E402


def find_dir(d):
    for sub in ("MNIST/raw", "FashionMNIST/raw", ""):
        p = os.path.join(d, sub)
        for ext in ("", ".gz"):
            if os.path.exists(os.path.join(p, "train-images-idx3-ubyte" + ext)):
                return p
    raise SystemExit(f"drover: mnist_torch: no IDX files in {d}")


def read_idx(d, name):
    for ext in ("", ".gz"):
        p = os.path.join(d, name + ext)
        if os.path.exists(p):
            raw = (gzip.open if ext else open)(p, "rb").read()
            ndim = raw[3]
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).copy()
    raise SystemExit(f"drover: mnist_torch: missing {name}")


def load(d, dev):
    d = find_dir(d)
    out = []
    for pre in ("train", "t10k"):
        im = read_idx(d, pre + "-images-idx3-ubyte").reshape(-1, 1, 28, 28)
        lb = read_idx(d, pre + "-labels-idx1-ubyte").astype(np.int64)
        x = (torch.from_numpy(im).float() / 255 - 0.1307) / 0.3081
        out += [x.to(dev), torch.from_numpy(lb).to(dev)]
    return out


class GraphedStep:
    """One training step of a full batch as a CUDA graph: replay(idx)
    trains on the images xtr[idx]."""

    def __init__(self, net, opt, xtr, ytr, bs):
        self.idx = torch.zeros(bs, dtype=torch.long, device=xtr.device)
        saved = [p.detach().clone() for p in net.parameters()]

        def step():
            loss = F.nll_loss(net(xtr[self.idx]), ytr[self.idx])
            loss.backward()
            opt.step()

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            step()
        with torch.no_grad():  # undo the warm-up: same start as eager
            for p, p0 in zip(net.parameters(), saved):
                p.copy_(p0)
            for st in opt.state.values():
                for v in st.values():
                    if torch.is_tensor(v):
                        v.zero_()

    def replay(self, idx):
        self.idx.copy_(idx)
        self.graph.replay()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", default="eager",
                    choices=("eager", "graph", "compile"))
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1.0)
    ap.add_argument("--gamma", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-batches", type=int, default=0)
    ap.add_argument("--tf32", action="store_true")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    xtr, ytr, xte, yte = load(a.data_dir, dev)
    model = Net().to(dev)
    graphed = a.mode != "eager"
    if graphed and dev.type != "cuda":
        raise SystemExit(f"drover: mnist_torch: --mode {a.mode} needs CUDA")
    if graphed:  # the learning rate a tensor, so that StepLR reaches the graph
        opt = optim.Adadelta(model.parameters(), capturable=True,
                             lr=torch.tensor(a.lr, device=dev))
    else:
        opt = optim.Adadelta(model.parameters(), lr=a.lr)
    sched = StepLR(opt, step_size=1, gamma=a.gamma)
    net = torch.compile(model) if a.mode == "compile" else model
    n = xtr.shape[0]
    nb = (n + a.batch_size - 1) // a.batch_size
    if a.max_batches:
        nb = min(nb, a.max_batches)
    if graphed:
        model.train()
        graph = GraphedStep(net, opt, xtr, ytr, a.batch_size)
    images, train_time = 0, 0.0
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, device=dev)
        for b in range(nb):
            idx = perm[b * a.batch_size:(b + 1) * a.batch_size]
            images += idx.shape[0]
            if graphed and idx.shape[0] == a.batch_size:
                graph.replay(idx)
                continue
            opt.zero_grad(set_to_none=not graphed)  # the graph owns them
            loss = F.nll_loss(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        train_time += t1 - t0
        model.eval()
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            for b in range(0, xte.shape[0], 1000):
                out = model(xte[b:b + 1000])
                loss_sum += F.nll_loss(out, yte[b:b + 1000],
                                       reduction="sum").item()
                correct += (out.argmax(1) == yte[b:b + 1000]).sum().item()
        sched.step()
        m = xte.shape[0]
        print(f"epoch {epoch}: test loss {loss_sum / m:.4f} accuracy "
              f"{100.0 * correct / m:.2f}% time "
              f"{time.perf_counter() - t0:.3f}s", flush=True)
    print(f"training: {images} images in {train_time:.2f} s "
          f"({images / train_time:.1f} images/s)")


if __name__ == "__main__":
    main()
