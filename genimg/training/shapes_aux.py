"""The auxiliary shape classifier shared by the one-step trainers (GAN, VAE): AC-GAN's idea, Odena et al. 2017.

A small network learns from real training renders which of the grammar's shapes a scene holds
(multi-label); a generator then pays ``weight x BCE(classifier(its image), the caption's shapes)`` -
a dense, per-image signal for the one thing the adversarial and likelihood losses let slide (both
models drew colours and backgrounds right and shapes as blobs). Training only: it is not the
evaluator (that is classical vision, :mod:`genimg.scenes.evaluator`) and never ships.

Written here because it is a training loss of ours, not a model any library ships.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F

from genimg.training.checkpoints import load_optimizer_tensors, load_tensors, optimizer_tensors
from genimg.training.data import unit_batch


class ShapeClassifier(torch.nn.Module):
    """Which shapes an image in [-1, 1] holds: (B, 3, H, W) -> (B, classes) logits (multi-label).

    Three stride-2 convolutions with group norm, then a global average: presence anywhere in the
    image, not position.
    """

    def __init__(self, classes: int, width: int = 32):
        super().__init__()
        layers, cin = [], 3
        for cout in (width, 2 * width, 4 * width):
            layers += [torch.nn.Conv2d(cin, cout, 3, 2, 1), torch.nn.GroupNorm(8, cout), torch.nn.LeakyReLU(0.2)]
            cin = cout
        self.convs = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x).mean(dim=(2, 3)))


def caption_shapes(captions) -> list[tuple[str, ...]]:
    """The shape names each caption names (in order; () for a caption the grammar's parser cannot read)."""
    from genimg.errors import GenimgError
    from genimg.scenes.prompts import parse_prompt

    shapes = []
    for caption in captions:
        try:
            spec = parse_prompt(caption)
        except GenimgError:
            spec = None
        shapes.append(tuple(o.shape for o in spec.objects) if spec is not None else ())
    return shapes


def shape_labels(shapes) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-hot (N, len(SHAPES)) float labels of which shapes each caption names, and an (N,) bool mask of
    the captions the parser could read (the others carry no label)."""
    from genimg.scenes.grammar import SHAPES

    labels = torch.zeros(len(shapes), len(SHAPES))
    for i, names in enumerate(shapes):
        for name in names:
            labels[i, SHAPES.index(name)] = 1.0
    return labels, labels.sum(dim=1) > 0


def aux_bce(logits: torch.Tensor, labels: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of auxiliary ``logits`` against multi-hot ``labels`` over the ``known`` rows (0 if none)."""
    if not bool(known.any()):
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[known], labels[known])


class ShapeAux:
    """The classifier, its optimizer and the training set's labels, for one trainer.

    ``data`` is the trainer's training data (images first, as :func:`unit_batch` reads it) and ``shapes``
    each training caption's shape names. Pretrain it on real images (:meth:`pretrain`) before the
    generator's first step, so that its first word to the generator means something; then
    :meth:`learn` on each real batch and :meth:`generator_loss` on the generator's images.
    """

    def __init__(self, data, shapes, *, batch_size: int, seed: int, lr: float = 1e-3):
        from genimg.scenes.grammar import SHAPES

        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.labels, self.known = shape_labels(shapes)
        self.model = ShapeClassifier(len(SHAPES))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)

    def learn(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """One step on real images ``x`` (training rows ``idx``); returns the loss. It never sees a fake as a label."""
        loss = aux_bce(self.model(x.detach()), self.labels[idx], self.known[idx])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss

    def generator_loss(self, images: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """BCE of the classifier's reading of generated ``images`` against the shapes of captions ``idx``."""
        return aux_bce(self.model(images), self.labels[idx], self.known[idx])

    def pretrain(self, steps: int, log: Callable[[str], None], who: str) -> None:
        """``steps`` steps on real images alone (measured: 0.96 label accuracy on unseen renders after
        2 500 steps, about two CPU-minutes); logs the accuracy every 500."""
        gen = torch.Generator().manual_seed(self.seed + 104_729)
        n = len(self.data[0])
        for step in range(steps):
            idx = torch.randint(0, n, (self.batch_size,), generator=gen)
            loss = self.learn(unit_batch(self.data, idx)[0], idx)
            if (step + 1) % 500 == 0 or step + 1 == steps:
                log(f"{who}: shape classifier step {step + 1}/{steps}: loss {loss.item():.4f}, "
                    f"label accuracy {self.accuracy():.3f} (512 training images)")

    @torch.no_grad()
    def accuracy(self, count: int = 512) -> float:
        """The label accuracy on the last ``count`` training images (a fixed probe set)."""
        idx = torch.arange(max(0, len(self.data[0]) - count), len(self.data[0]))
        logits = self.model(unit_batch(self.data, idx)[0])
        known = self.known[idx]
        return float(((logits[known] > 0).float() == self.labels[idx][known]).float().mean())

    def tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """Checkpoint tensors: the classifier and its optimizer's moments."""
        return {"shape_classifier": self.model.state_dict(), "opt_c": optimizer_tensors(self.opt)}

    def load(self, checkpoint: Path) -> bool:
        """Restore from ``checkpoint``; False (nothing loaded) when it holds no classifier."""
        if not (Path(checkpoint) / "shape_classifier.safetensors").exists():
            return False
        self.model.load_state_dict(load_tensors(checkpoint, "shape_classifier"))
        load_optimizer_tensors(self.opt, load_tensors(checkpoint, "opt_c"))
        return True
