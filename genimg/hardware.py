"""What machine this is, said once: reports, benchmarks, model cards and cached cells all quote it."""

from __future__ import annotations

import os
import platform
from typing import Any


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (e.g. "AMD EPYC 7B13"), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict[str, Any]:
    """CPU model and cores, memory, GPU (name, memory, count, CUDA version), OS and torch threads."""
    import psutil

    info: dict[str, Any] = {"cpu": cpu_name(), "cpu_logical_cores": os.cpu_count(),
                            "cpu_physical_cores": psutil.cpu_count(logical=False),
                            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                            "os": platform.platform(), "machine": platform.machine(), "host": platform.node(),
                            "gpu": None}
    try:
        import torch
    except ImportError:
        return info
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                       "count": torch.cuda.device_count(), "cuda": torch.version.cuda}
    return info


def summary() -> str:
    """One line for logs and model cards: "<cpu>, <n> torch threads, <gpu or no GPU>"."""
    info = describe()
    gpu = info["gpu"]["name"] if info.get("gpu") else "no GPU"
    threads = info.get("torch_threads")
    return f"{info['cpu']}, {threads} torch threads, {gpu}" if threads else f"{info['cpu']}, {gpu}"
