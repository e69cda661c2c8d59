"""The one dtype/device policy.

fp16 on CUDA; on the CPU bf16 where the processor has native bf16 arithmetic
(AVX512-BF16 or AMX), otherwise fp32. ``GENIMG_DEVICE`` / ``GENIMG_DTYPE`` override.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import torch

from genimg.config import settings
from genimg.errors import GenimgError

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
           "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Placement:
    """Where and in which precision a model runs."""

    device: torch.device
    dtype: torch.dtype

    def describe(self) -> str:
        return f"{self.device.type}/{str(self.dtype).removeprefix('torch.')}"


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists AVX512-BF16 or AMX-BF16 (fast bf16 matmuls)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def parse_dtype(name: str) -> torch.dtype:
    """Map "fp16"/"bf16"/"fp32" (or the long names) to a torch dtype; raise GenimgError."""
    try:
        return _DTYPES[name.strip().lower()]
    except KeyError:
        raise GenimgError(f"unknown dtype {name!r}: use one of fp32, fp16, bf16") from None


def configure_cpu_threads() -> int:
    """Apply ``GENIMG_TORCH_THREADS`` (torch intra-op threads; unset or 0 = torch's default).

    On small CPUs shared with other processes, two OpenMP threads per process measured 3-10x
    slower than one (each parallel region waits for a descheduled thread; docs/embedded-models.md),
    so a hosted 2-vCPU demo may want 1. Returns the thread count in effect.
    """
    raw = os.environ.get("GENIMG_TORCH_THREADS", "").strip()
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            raise GenimgError(f"GENIMG_TORCH_THREADS must be a whole number, got {raw!r}") from None
        if wanted < 0:
            raise GenimgError(f"GENIMG_TORCH_THREADS must be 0 (torch's default) or more, got {wanted}")
        if wanted and wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
    return torch.get_num_threads()


def default_placement(preferred_dtype: str | None = None) -> Placement:
    """The placement new models get.

    ``preferred_dtype`` is a catalog entry's own choice (some small models are faster or
    only accurate in fp32); the environment override still wins.
    """
    env = settings()
    device_name = env.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device_name.startswith("cuda") and not torch.cuda.is_available():
        raise GenimgError("GENIMG_DEVICE asks for CUDA but no CUDA device is available here: unset it to use the CPU")
    device = torch.device(device_name)
    if env.dtype:
        dtype = parse_dtype(env.dtype)
    elif preferred_dtype:
        dtype = parse_dtype(preferred_dtype)
    elif device.type == "cuda":
        dtype = torch.float16
    else:
        dtype = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if device.type == "cpu" and dtype == torch.float16:
        # fp16 kernels on the CPU are slow or missing; bf16 keeps the memory saving.
        dtype = torch.bfloat16
    return Placement(device=device, dtype=dtype)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def module_nbytes(model: Any) -> int:
    """Bytes of weights a loaded model holds.

    A non-torch model (ncnn, ONNX) says so itself with an integer ``nbytes`` attribute (its
    weight files' size); for torch, parameters and buffers of the pipeline's modules.
    """
    own = getattr(model, "nbytes", None)
    if isinstance(own, int) and not isinstance(model, torch.Tensor):
        return own
    modules: list[torch.nn.Module] = []
    if isinstance(model, torch.nn.Module):
        modules.append(model)
    for value in getattr(model, "components", {}).values():
        if isinstance(value, torch.nn.Module):
            modules.append(value)
    seen: set[int] = set()
    total = 0
    for module in modules:
        for tensor in list(module.parameters()) + list(module.buffers()):
            key = tensor.data_ptr()
            if key in seen:  # shared weights count once
                continue
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    return total


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's OutOfMemoryError (CUDA), Python's MemoryError, and the CPU allocator's
    RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
