"""How many torch threads training runs on, measured rather than assumed.

On a CPU shared with other busy processes two OpenMP threads can be several times slower
than one (each parallel region waits for a descheduled thread), so a fixed count is often
wrong by the time a long run is half done.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch


def _probe_threads(n: int, repeats: int = 3) -> float:
    """Seconds for a small conv/linear workload at ``n`` torch threads (best of ``repeats``)."""
    torch.set_num_threads(n)
    x = torch.randn(8, 64, 16, 16)
    w = torch.randn(64, 64, 3, 3)
    a = torch.randn(256, 256)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(10):
            torch.nn.functional.conv2d(x, w, padding=1)
            torch.nn.functional.layer_norm(a, (256,))
            a @ a
        best = min(best, time.perf_counter() - t0)
    return best


class ThreadTuner:
    """Pick the torch thread count (1 or ``max_threads``) that is fastest *now*.

    ``threads`` is a number (used as given) or "auto"/None/0: then both counts are timed,
    first with a probe, then every ``every`` steps over short windows of real training
    steps, and the faster is kept.
    """

    def __init__(self, threads, log=print, every: int = 300, window: int = 12):
        self.auto = threads in (None, "auto", 0)
        self.max_threads = max(1, min(2, os.cpu_count() or 1)) if self.auto else int(threads)
        self.log, self.every, self.window = log, every, window
        self.current = self.max_threads
        self.trial: list[float] = []
        self.trial_threads = None
        self.base: list[float] = []
        torch.set_num_threads(self.current)

    def probe(self) -> int:
        """Time a small workload at 1 and ``max_threads`` threads (auto mode), set the faster; returns it."""
        if self.auto and self.max_threads > 1:
            times = {n: _probe_threads(n) for n in (1, self.max_threads)}
            # Prefer more threads unless one thread is clearly faster (contended CPU).
            self.current = 1 if times[1] < 0.8 * times[self.max_threads] else self.max_threads
            self.log(f"threads: probe {', '.join(f'{n}: {t * 1000:.0f}ms' for n, t in times.items())} -> {self.current}")
        torch.set_num_threads(self.current)
        return self.current

    def after_step(self, step: int, seconds: float) -> None:
        """Record a training step's duration; now and then try the other thread count on real steps."""
        if not self.auto or self.max_threads < 2:
            return
        if self.trial_threads is None:
            self.base.append(seconds)
            self.base = self.base[-self.window:]
            if step % self.every == 0 and len(self.base) == self.window:
                self.trial_threads = 1 if self.current != 1 else self.max_threads
                self.trial = []
                torch.set_num_threads(self.trial_threads)
            return
        self.trial.append(seconds)
        if len(self.trial) < self.window + 2:
            return
        # The first two trial steps pay for the switch itself.
        base, trial = float(np.median(self.base)), float(np.median(self.trial[2:]))
        if trial < 0.9 * base:
            self.log(f"threads: {self.trial_threads} ({trial:.2f}s/step) beats {self.current} ({base:.2f}s/step)")
            self.current = self.trial_threads
        torch.set_num_threads(self.current)
        self.trial_threads, self.base = None, []
