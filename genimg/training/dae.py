"""Training of the project's denoising autoencoder (``python -m genimg train dae``), on the CPU, in minutes.

The network and its runtime (tiled denoising) are :mod:`genimg.embedded.dae`. Training data:
patches of scikit-image's bundled images *other than* the ones the examples come from
(retina, immunohistochemistry, hubble, brick, grass, gravel, moon, text, page, colorwheel,
cell), with Gaussian noise σ ∈ [0, 55] (0-255 scale), so the PSNR gain in the model card
is measured on held-out images (the bundled examples).

It runs in the shared loop for a time budget (``--minutes``) or a step count, whichever
ends first, without checkpoints (a run takes minutes); its export writes the weights,
``config.json`` and ``MODEL_CARD.md`` into ``--out`` (default ``assets/restore/dae``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from genimg.errors import GenimgError
from genimg.embedded.dae import CONFIG, DAE_DIR, WEIGHTS, build_model, denoise
from genimg.training.loop import Cadence, RunResult, Trainer, fit
from genimg.training.registry import register_trainer

TRAIN_IMAGES = ("retina", "immunohistochemistry", "hubble_deep_field", "brick", "grass", "gravel", "moon",
                "text", "page", "colorwheel", "cell")


def _training_images() -> list[np.ndarray]:
    import skimage.data

    images = []
    for name in TRAIN_IMAGES:
        array = getattr(skimage.data, name)()
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        images.append(array[..., :3].astype(np.float32) / 255.0)
    return images


def _example_images() -> list[tuple[str, np.ndarray]]:
    from genimg.imageio import load_image
    from genimg.examples import example_paths

    return [(p.stem, load_image(p).rgb_array()) for p in example_paths(rgb_only=True)]


def evaluate(model: Any, sigma: float = 25.0, seed: int = 0) -> dict[str, Any]:
    """PSNR of noisy vs denoised on the bundled (held-out) examples at Gaussian noise ``sigma`` (0-255 scale).

    Returns ``{"sigma", "images": [{"image", "noisy_psnr", "dae_psnr"}], "mean_gain_db"}``.
    """
    from skimage.metrics import peak_signal_noise_ratio as psnr

    from genimg.restore.degrade import degrade

    rows = []
    for name, clean in _example_images():
        noisy = degrade(clean, f"noise:{sigma:g}", seed=seed).image
        restored = denoise(model, noisy.astype(np.float32) / 255.0)
        out = (restored * 255.0 + 0.5).astype(np.uint8)
        rows.append({"image": name, "noisy_psnr": round(float(psnr(clean, noisy, data_range=255)), 3),
                     "dae_psnr": round(float(psnr(clean, out, data_range=255)), 3)})
    gain = float(np.mean([r["dae_psnr"] - r["noisy_psnr"] for r in rows]))
    return {"sigma": sigma, "images": rows, "mean_gain_db": round(gain, 3)}


class DaeTrainer(Trainer):
    """The DAE on random noisy patches: MSE, Adam, learning rate cosine-decayed over the time budget."""

    name = "dae"
    checkpointed = False

    def __init__(self, *, minutes: float = 10.0, max_steps: int = 20000, batch: int = 16, patch: int = 48,
                 lr: float = 2e-3, seed: int = 0, threads: int | None = None,
                 eval_sigmas: tuple[float, ...] = (25.0, 15.0), log: Callable[[str], None] | None = None):
        super().__init__(Cadence(steps=max_steps, ckpt_seconds=None, log_every=200, budget_seconds=minutes * 60.0),
                         threads=threads or None, log=log or (lambda text: print(text, flush=True)))
        self.budget_s, self.max_steps = minutes * 60.0, max_steps
        self.batch, self.patch, self.lr, self.seed, self.eval_sigmas = batch, patch, lr, seed, eval_sigmas

    def setup(self, out_dir: Path, resume_from: Path | None) -> None:
        """The training images (sampled in proportion to their area), the network and Adam."""
        self.rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        self.images = _training_images()
        weights = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.model = build_model(**CONFIG)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.started = time.perf_counter()

    def step(self, step: int) -> dict[str, float]:
        """One MSE step on a batch of random flipped/rotated patches with random noise; returns {"loss"}."""
        rng, images, patch, batch = self.rng, self.images, self.patch, self.batch
        clean = np.empty((batch, patch, patch, 3), dtype=np.float32)
        for i in range(batch):
            im = images[rng.choice(len(images), p=self.weights)]
            y = rng.integers(0, im.shape[0] - patch + 1)
            x = rng.integers(0, im.shape[1] - patch + 1)
            chunk = im[y:y + patch, x:x + patch]
            if rng.random() < 0.5:
                chunk = chunk[:, ::-1]
            clean[i] = np.rot90(chunk, k=int(rng.integers(0, 4)))
        sigmas = rng.uniform(0.0, 55.0, size=(batch, 1, 1, 1)).astype(np.float32) / 255.0
        # Noisy inputs are quantised to 8 bits, like the images the model will see.
        noisy = np.round(np.clip(clean + rng.normal(size=clean.shape).astype(np.float32) * sigmas, 0, 1) * 255) / 255
        x_t = torch.from_numpy(np.ascontiguousarray(noisy.transpose(0, 3, 1, 2), dtype=np.float32))
        y_t = torch.from_numpy(np.ascontiguousarray(clean.transpose(0, 3, 1, 2)))
        # Cosine decay over the time budget (the step count is not known in advance).
        frac = min(1.0, (time.perf_counter() - self.started) / self.budget_s, step / self.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * 0.5 * (1 + math.cos(math.pi * frac))
        loss = torch.nn.functional.mse_loss(self.model(x_t), y_t)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}

    def evaluate(self) -> dict[str, Any]:
        """The held-out evaluation at each of ``eval_sigmas``: {"evaluations": [:func:`evaluate` of each]}."""
        training = self.model.training
        self.model.eval()
        reports = {sigma: evaluate(self.model, sigma, self.seed) for sigma in self.eval_sigmas}
        self.model.train(training)
        return {"evaluations": [reports[sigma] for sigma in self.eval_sigmas]}

    def export(self, result: RunResult, assets: Path) -> dict[str, Any]:
        """Save ``dae.safetensors`` + ``config.json`` in ``assets``, evaluate, write ``MODEL_CARD.md``.

        Returns the summary: steps, seconds, batch, patch, lr, final_loss, parameters, bytes, evaluations.
        """
        from safetensors.torch import save_file

        self.model.eval()
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(assets / WEIGHTS), metadata={"format": "pt", "arch": "genimg TinyDAE"})
        (assets / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
        evaluations = self.evaluate()["evaluations"]
        summary = {"steps": result.steps, "seconds": round(result.loop_seconds, 1), "batch": self.batch,
                   "patch": self.patch, "lr": self.lr, "final_loss": result.mean("loss", 200),
                   "parameters": sum(p.numel() for p in self.model.parameters()),
                   "bytes": (assets / WEIGHTS).stat().st_size, "evaluations": evaluations}
        (assets / "MODEL_CARD.md").write_text(_model_card(summary))
        self.log(f"saved {assets / WEIGHTS}: " + ", ".join(f"gain {r['mean_gain_db']:.2f} dB at sigma {r['sigma']:g}"
                                                          for r in evaluations))
        return summary


def train_dae(out_dir: str | Path | None = None, minutes: float = 10.0, max_steps: int = 20000, batch: int = 16,
              patch: int = 48, lr: float = 2e-3, seed: int = 0, threads: int | None = None,
              eval_sigmas: tuple[float, ...] = (25.0, 15.0), log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the DAE for ``minutes`` (or ``max_steps``) on random noisy patches; save and evaluate it.

    Writes ``dae.safetensors``, ``config.json`` and ``MODEL_CARD.md`` into ``out_dir``
    (default ``assets/restore/dae``). Returns the training summary with the held-out PSNR gain.
    """
    out_dir = Path(out_dir or DAE_DIR)
    trainer = DaeTrainer(minutes=minutes, max_steps=max_steps, batch=batch, patch=patch, lr=lr, seed=seed,
                         threads=threads, eval_sigmas=eval_sigmas, log=log)
    return fit(trainer, out_dir, resume=False, export_to=out_dir).summary()


def _model_card(s: dict[str, Any]) -> str:
    def table(report: dict[str, Any]) -> str:
        lines = ["| image | noisy PSNR | DAE PSNR | gain |", "| --- | --- | --- | --- |"]
        for r in report["images"]:
            lines.append(f"| {r['image']} | {r['noisy_psnr']:.2f} | {r['dae_psnr']:.2f} | "
                         f"{r['dae_psnr'] - r['noisy_psnr']:+.2f} dB |")
        return "\n".join(lines)

    evaluations = "\n\n".join(f"Gaussian noise σ = {r['sigma']:g}: mean gain **{r['mean_gain_db']:+.2f} dB**\n\n{table(r)}"
                                for r in s["evaluations"])
    return f"""# genimg denoising autoencoder (TinyDAE)

A small residual CNN denoiser trained by genimg itself (`python -m genimg train dae`).

- Architecture: 8 conv 3×3 layers, 32 channels, ReLU; predicts the noise and subtracts it.
- Parameters: {s['parameters']:,} ({s['bytes'] / 1024:.0f} KiB safetensors, fp32).
- Input/output: RGB in 0..1, any size (tiled at 384 px with 16 px context).
- Trained on: random {s['patch']}×{s['patch']} patches (flips, rotations) of scikit-image's bundled
  images {', '.join(TRAIN_IMAGES)} — none of them is one of the bundled examples — with Gaussian
  noise σ uniform in [0, 55] (0-255 scale), 8-bit quantised; MSE loss, Adam, lr {s['lr']} with cosine decay.
- Training run: {s['steps']} steps of batch {s['batch']} in {s['seconds']:.0f} s on the CPU; final loss {s['final_loss']:.6f}.
- Licence: same as genimg; training images are public domain / CC0 (see scikit-image's data notes).

## Held-out evaluation (bundled examples, seed 0)

{evaluations}

Limits: trained briefly on a small set; it removes Gaussian-like noise only (not JPEG
blocks, not blur) and is weaker than non-local means on smooth images.
"""


@register_trainer("dae")
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m genimg train dae``: train, save and evaluate; returns the summary (JSON-able).

    Raises GenimgError when ``--minutes`` or ``--steps`` is not positive.
    """
    parser = argparse.ArgumentParser(prog="python -m genimg train dae", description="train the denoising autoencoder")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time budget (default 10)")
    parser.add_argument("--steps", type=int, default=20000, help="at most this many steps")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {DAE_DIR})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-sigmas", type=float, nargs="+", default=[25.0, 15.0],
                        help="noise levels of the held-out evaluation in the model card")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.steps <= 0:
        raise GenimgError("--minutes and --steps must be positive")
    return train_dae(args.out, minutes=args.minutes, max_steps=args.steps, batch=args.batch, seed=args.seed,
                     threads=args.threads, eval_sigmas=tuple(args.eval_sigmas))
