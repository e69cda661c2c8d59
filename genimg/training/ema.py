"""Exponential moving average of a model's weights (what the embedded models ship)."""

from __future__ import annotations

import copy

import torch


class EMA:
    """A frozen copy of ``model`` (``.model``) that trails its weights by ``decay`` per update."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.9995):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int | None = None) -> None:
        """Move the average towards ``model``'s weights.

        With ``step`` the decay ramps up as min(decay, (1 + step) / (10 + step)), so the
        average is not dominated by the random initial weights; without it, plain ``decay``.
        """
        d = self.decay if step is None else min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights."""
        return self.model.state_dict()
