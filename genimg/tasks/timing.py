"""Honest timings for a pipeline call: stages (text encode / denoise / decode) and peak memory.

Stage times come from forward hooks on the pipeline's own components, so they work for
any diffusers-style pipeline without changing its code. On CUDA each hook synchronises
the device, so a stage's time is the device's time, not the launch time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from genimg.models.device import synchronize

_TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")


@dataclass
class Timings:
    """Seconds per stage of one generation call (0.0 when a stage does not apply)."""

    load_s: float = 0.0          # loading the model in this request (cold start), else 0
    wait_s: float = 0.0          # waiting for the model's lock (another request was using it)
    text_encode_s: float = 0.0
    denoise_s: float = 0.0
    decode_s: float = 0.0
    total_s: float = 0.0         # the whole pipeline call, device-synchronised
    steps: int = 0
    steps_per_s: float = 0.0
    peak_memory_bytes: int = 0   # CUDA: peak allocated; CPU: peak RSS above the start
    memory_kind: str = ""
    warm: bool = True
    batch_requests: int = 1      # requests served by this one pipeline call (micro-batching)
    batch_images: int = 0        # images the call made for all of them

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StageTimer:
    """Context manager that hooks a pipeline's text encoders and VAE decoder and times them.

    Call :meth:`step` from the pipeline's step callback; :attr:`timings` holds the
    result after exit.
    """

    def __init__(self, pipe: Any, device: torch.device):
        self.pipe = pipe
        self.device = device
        self.timings = Timings()
        self._handles: list[Any] = []
        self._starts: dict[str, float] = {}
        self._text_end = None
        self._last_step = None
        self._call_start = 0.0

    def _hook(self, module: torch.nn.Module, stage: str) -> None:
        def pre(_module, _args):
            synchronize(self.device)
            self._starts[stage] = time.perf_counter()

        def post(_module, _args, _output):
            synchronize(self.device)
            now = time.perf_counter()
            elapsed = now - self._starts.pop(stage, now)
            if stage == "text":
                self.timings.text_encode_s += elapsed
                self._text_end = now
            else:
                self.timings.decode_s += elapsed

        self._handles.append(module.register_forward_pre_hook(pre))
        self._handles.append(module.register_forward_hook(post))

    def step(self) -> None:
        """Record that a denoising step finished (call from callback_on_step_end)."""
        synchronize(self.device)
        self._last_step = time.perf_counter()
        self.timings.steps += 1

    def __enter__(self) -> "StageTimer":
        for name in _TEXT_ENCODERS:
            module = getattr(self.pipe, name, None)
            if isinstance(module, torch.nn.Module):
                self._hook(module, "text")
        vae = getattr(self.pipe, "vae", None)
        # A pipeline without a VAE may name the network that draws its pixels (genimg-emoji's glyph decoder).
        decoder = getattr(vae, "decoder", None) or getattr(self.pipe, "decode_module", None)
        if isinstance(decoder, torch.nn.Module):
            self._hook(decoder, "decode")
        synchronize(self.device)
        self._call_start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        synchronize(self.device)
        end = time.perf_counter()
        for handle in self._handles:
            handle.remove()
        t = self.timings
        t.total_s = end - self._call_start
        if self._last_step is not None:
            start = self._text_end if self._text_end is not None else self._call_start
            t.denoise_s = max(0.0, self._last_step - start)
        if t.denoise_s > 0 and t.steps:
            t.steps_per_s = t.steps / t.denoise_s


class PeakMemory:
    """Peak memory during a block: CUDA allocator peak, or sampled process RSS on the CPU."""

    def __init__(self, device: torch.device, interval_s: float = 0.02):
        self.device = device
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.kind = "cuda-allocated" if device.type == "cuda" else "cpu-rss-delta"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        import psutil

        process = psutil.Process()
        baseline = process.memory_info().rss
        peak = [baseline]

        def sample() -> None:
            while not self._stop.wait(self.interval_s):
                peak[0] = max(peak[0], process.memory_info().rss)

        self._peak_box, self._baseline = peak, baseline
        self._thread = threading.Thread(target=sample, name="genimg-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device))
            return
        import psutil

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        final = psutil.Process().memory_info().rss
        self.peak_bytes = max(0, max(self._peak_box[0], final) - self._baseline)
