"""Node telemetry for the Python baseline of telemetry_full (bench/seed):
the 1-minute CPU load average and, where NVML answers, every GPU's
utilisation, as the seed's telem.py gathers them (NVML initialised and shut
down around each sample), printed as lines or shown as tqdm bars."""
import os

try:
    import pynvml as nvml
except ImportError:  # the seed itself uses py3nvml
    try:
        from py3nvml import py3nvml as nvml
    except ImportError:
        nvml = None


def gpu_count():
    """Number of GPUs NVML sees here, 0 without NVML; never touches CUDA,
    so it is safe in a parent that forks workers afterwards."""
    if nvml is None:
        return 0
    try:
        nvml.nvmlInit()
    except Exception:
        return 0
    try:
        return nvml.nvmlDeviceGetCount()
    finally:
        nvml.nvmlShutdown()


def call_nvml():
    """One sample of this node: a dict with the host name, the load
    average and a list of (device index, utilisation %) pairs."""
    info = {"nodename": os.uname().nodename,
            "cpu_load": os.getloadavg()[0],
            "devices": []}
    if nvml is None:
        return info
    try:
        nvml.nvmlInit()
    except Exception:
        return info
    try:
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            info["devices"].append((i, float(util.gpu)))
    finally:
        nvml.nvmlShutdown()
    return info


def printTelem(info):
    """The seed's telemetry line, one per sample."""
    line = (f"nodename: {info['nodename']} cpu load average 1 minute: "
            f"{info['cpu_load']}")
    for dev, util in info["devices"]:
        line += f" device # {dev} utilization: {util:.2f}%"
    print(line, flush=True)


def updateTelemDict(info, bars, deviceID=None):
    """Show a sample as tqdm bars, one for the load and one per GPU of its
    node, created on first sight and redrawn in place afterwards."""
    from tqdm import tqdm

    host = info["nodename"]
    rows = [("cpu load avg.", min(info["cpu_load"], 100.0))]
    for dev, util in info["devices"]:
        if deviceID is None or dev == deviceID:
            rows.append((f"device {dev} util", util))
    for label, value in rows:
        key = (host, label)
        if key not in bars:
            bars[key] = tqdm(total=100, desc=f"{host} {label}",
                             position=len(bars), leave=True)
        bar = bars[key]
        bar.n = round(value, 2)
        bar.refresh()
