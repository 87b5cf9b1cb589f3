"""Baselines of bench/telemetry.sh.

sample ITERS: one sample of every field of every GPU with pynvml, plus the
  load average, /proc/stat and /proc/meminfo, as the seed's telemetry does
  it (nvmlInit and nvmlShutdown around each sample); prints
  "us_per_sample_with_init us_per_sample_initialised_once gpus".
loop: the seed's monitor loop (os.getloadavg, time.sleep(1)) forever.
load SECONDS: a GPU load with torch that alternates heavy and light phases.
"""
import os
import sys
import time


def read_cpu():
    with open("/proc/stat") as f:
        f.readline()
    with open("/proc/meminfo") as f:
        f.read()
    return os.getloadavg()


def one_sample(pynvml, handles):
    out = []
    for h in handles:
        out.append((pynvml.nvmlDeviceGetName(h), pynvml.nvmlDeviceGetUUID(h),
                    pynvml.nvmlDeviceGetUtilizationRates(h),
                    pynvml.nvmlDeviceGetMemoryInfo(h),
                    pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
                    pynvml.nvmlDeviceGetPowerUsage(h)))
    return read_cpu(), out


def sample(iters):
    import pynvml
    t0 = time.perf_counter()
    for _ in range(iters):
        pynvml.nvmlInit()
        n = pynvml.nvmlDeviceGetCount()
        one_sample(pynvml, [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)])
        pynvml.nvmlShutdown()
    cold = (time.perf_counter() - t0) / iters * 1e6
    pynvml.nvmlInit()
    n = pynvml.nvmlDeviceGetCount()
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
    t0 = time.perf_counter()
    for _ in range(iters * 10):
        one_sample(pynvml, handles)
    warm = (time.perf_counter() - t0) / (iters * 10) * 1e6
    pynvml.nvmlShutdown()
    print(f"{cold:.3f} {warm:.3f} {n}")


def loop():
    while True:
        os.getloadavg()
        time.sleep(1)


def load(seconds):
    import torch
    big = torch.randn(8192, 8192, device="cuda")
    small = torch.randn(512, 512, device="cuda")
    t0 = time.time()
    while time.time() - t0 < seconds:
        if int(time.time() - t0) // 5 % 2 == 0:
            for _ in range(10):
                big @ big
        else:
            small @ small
            time.sleep(0.01)
        torch.cuda.synchronize()


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "sample":
        sample(int(sys.argv[2]))
    elif what == "loop":
        loop()
    elif what == "load":
        load(float(sys.argv[2]))
