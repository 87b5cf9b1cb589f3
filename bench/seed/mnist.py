"""The MNIST job of the Python baseline of telemetry_full (bench/seed): the
network, optimiser (Adadelta) and schedule (StepLR) of PyTorch's MNIST
example, one training run per learning rate, as the seed's mnist.py
describes it. A worker takes a free GPU index from the device queue and
puts it back when done; without CUDA (or with --no-cuda) it trains on the
CPU and leaves the queue alone (the seed would wait there forever).

Data: torchvision's MNIST / FashionMNIST datasets when the data directory
has torchvision's layout (MNIST/raw or FashionMNIST/raw) and torchvision is
installed; otherwise the same images read from the IDX files (plain or .gz)
of the directory, with the same normalisation."""
import gzip
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR

import telem

MEAN, STD = 0.1307, 0.3081


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


class IdxDataset(torch.utils.data.Dataset):
    """Images and labels of one IDX pair, normalised item by item as
    torchvision's ToTensor + Normalize would."""

    def __init__(self, directory, prefix):
        self.images = read_idx(directory, prefix + "-images-idx3-ubyte")
        self.images = self.images.reshape(-1, 28, 28)
        self.labels = read_idx(directory, prefix + "-labels-idx1-ubyte")

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i]).float().div(255).unsqueeze(0)
        return (x - MEAN) / STD, int(self.labels[i])


def read_idx(directory, name):
    for ext in ("", ".gz"):
        path = os.path.join(directory, name + ext)
        if os.path.exists(path):
            with (gzip.open if ext else open)(path, "rb") as fh:
                raw = fh.read()
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).copy()
    raise SystemExit(f"drover: seed baseline: no {name} in {directory}")


def datasets_for(root):
    """(train, test) datasets of the data directory root."""
    for cls, sub in (("MNIST", "MNIST"), ("FashionMNIST", "FashionMNIST")):
        if os.path.isdir(os.path.join(root, sub, "raw")):
            try:
                from torchvision import datasets, transforms
            except ImportError:
                root = os.path.join(root, sub, "raw")
                break
            tf = transforms.Compose([transforms.ToTensor(),
                                     transforms.Normalize((MEAN,), (STD,))])
            ds = getattr(datasets, cls)
            return (ds(root, train=True, download=False, transform=tf),
                    ds(root, train=False, download=False, transform=tf))
    return IdxDataset(root, "train"), IdxDataset(root, "t10k")


def buildDeviceQueue(manager, no_cuda):
    """A queue of this node's free GPU indices (a manager queue, so pool
    tasks can receive it), or None when training runs on the CPU."""
    count = 0 if no_cuda else telem.gpu_count()
    if count == 0:
        return None
    q = manager.Queue()
    for i in range(count):
        q.put(i)
    return q


def train(model, device, loader, optimizer):
    model.train()
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()


def test(model, device, loader):
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            correct += output.argmax(dim=1).eq(target).sum().item()
    n = len(loader.dataset)
    return test_loss / n, 100.0 * correct / n


def mnist_lr_sweep(args, device_queue, lr):
    """Train at learning rate lr; returns (lr, test loss, accuracy %)."""
    gpu = device_queue.get() if device_queue is not None else None
    try:
        device = torch.device(f"cuda:{gpu}" if gpu is not None else "cpu")
        torch.manual_seed(args.seed)
        train_ds, test_ds = datasets_for(args.data_dir)
        # num_workers stays 0: pool workers are daemonic and may not start
        # the DataLoader's worker processes.
        extra = {"pin_memory": True} if gpu is not None else {}
        train_loader = torch.utils.data.DataLoader(
            train_ds, batch_size=args.batch_size, shuffle=True, **extra)
        test_loader = torch.utils.data.DataLoader(
            test_ds, batch_size=args.test_batch_size, **extra)
        model = Net().to(device)
        optimizer = optim.Adadelta(model.parameters(), lr=lr)
        scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
        loss, accuracy = 0.0, 0.0
        for _ in range(args.epochs):
            train(model, device, train_loader, optimizer)
            loss, accuracy = test(model, device, test_loader)
            scheduler.step()
        return lr, loss, accuracy
    finally:
        if gpu is not None:
            device_queue.put(gpu)
