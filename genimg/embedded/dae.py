"""The project's own denoising autoencoder: a small residual CNN trained here, on the CPU.

Architecture (DnCNN-style, small): 3 → 32 channels, 8 convolutions 3×3 with ReLU, the last
one predicting the noise, which is subtracted from the input (residual learning converges
in minutes where a plain encoder-decoder needs hours). ~57 k parameters, ~0.23 MB in
fp32 safetensors. Blind: trained over Gaussian noise σ ∈ [0, 55] (0-255 scale), so it
needs no σ at inference.

Training data: patches of scikit-image's bundled images *other than* the ones the
examples come from (retina, immunohistochemistry, hubble, brick, grass, gravel, moon,
text, page, colorwheel, cell), so the PSNR gain in the model card is measured on
held-out images (the bundled examples).

``python -m genimg train dae [--minutes M] [--steps N] [--out DIR]`` runs :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from genimg.config import ASSETS_DIR
from genimg.errors import GenimgError, ModelUnavailableError

DAE_DIR = ASSETS_DIR / "restore" / "dae"
WEIGHTS = "dae.safetensors"
TRAIN_IMAGES = ("retina", "immunohistochemistry", "hubble_deep_field", "brick", "grass", "gravel", "moon",
                "text", "page", "colorwheel", "cell")
CONFIG = {"channels": 32, "layers": 8}


def build_model(channels: int = 32, layers: int = 8):
    """The DAE as a torch module (random weights)."""
    import torch
    from torch import nn

    class TinyDAE(nn.Module):
        """Residual denoiser: returns ``x - net(x)``; input/output RGB in 0..1, (N, 3, H, W)."""

        def __init__(self) -> None:
            super().__init__()
            body: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True)]
            for _ in range(layers - 2):
                body += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
            body.append(nn.Conv2d(channels, 3, 3, padding=1))
            self.body = nn.Sequential(*body)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x - self.body(x)

    return TinyDAE()


def load_dae(folder: str | Path | None = None):
    """Load the trained DAE from ``folder`` (default ``assets/restore/dae``), eval mode, CPU fp32.

    Raises ModelUnavailableError when the weights are missing (train them with
    ``python -m genimg train dae``).
    """
    from safetensors.torch import load_file

    folder = Path(folder or DAE_DIR)
    path = folder / WEIGHTS
    if not path.is_file():
        raise ModelUnavailableError(f"the denoising autoencoder has no weights at {path}: "
                                    "train it with `python -m genimg train dae`")
    config = dict(CONFIG)
    config_path = folder / "config.json"
    if config_path.is_file():
        config.update(json.loads(config_path.read_text()))
    model = build_model(int(config["channels"]), int(config["layers"]))
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def denoise(model: Any, image: np.ndarray, tile: int = 384, pad: int = 16,
            progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Denoise float (H, W, 3) ``image`` in 0..1 with the DAE, in tiles of ``tile`` px with ``pad`` px context."""
    import torch

    h, w = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.empty_like(image, dtype=np.float32)
    tiles = [(y, x) for y in range(0, h, tile) for x in range(0, w, tile)]
    with torch.inference_mode():
        for i, (y, x) in enumerate(tiles):
            th, tw = min(tile, h - y), min(tile, w - x)
            chunk = padded[y:y + th + 2 * pad, x:x + tw + 2 * pad]
            tensor = torch.from_numpy(np.ascontiguousarray(chunk.transpose(2, 0, 1), dtype=np.float32))[None]
            result = model(tensor)[0].numpy().transpose(1, 2, 0)
            out[y:y + th, x:x + tw] = result[pad:pad + th, pad:pad + tw]
            if progress is not None:
                progress(i + 1, len(tiles))
    return np.clip(out, 0.0, 1.0)


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
    """PSNR of noisy vs denoised on the bundled (held-out) examples at noise ``sigma``."""
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


def train_dae(out_dir: str | Path | None = None, minutes: float = 10.0, max_steps: int = 20000, batch: int = 16,
              patch: int = 48, lr: float = 2e-3, seed: int = 0, threads: int | None = None,
              eval_sigmas: tuple[float, ...] = (25.0, 15.0), log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the DAE for ``minutes`` (or ``max_steps``) on random noisy patches; save and evaluate it.

    Writes ``dae.safetensors``, ``config.json`` and ``MODEL_CARD.md`` into ``out_dir``
    (default ``assets/restore/dae``). Returns the training summary with the held-out PSNR gain.
    """
    import torch
    from safetensors.torch import save_file

    log = log or (lambda text: print(text, flush=True))
    if threads:
        torch.set_num_threads(threads)
    out_dir = Path(out_dir or DAE_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    images = _training_images()
    weights = np.array([im.shape[0] * im.shape[1] for im in images], dtype=np.float64)
    weights /= weights.sum()
    model = build_model(**CONFIG)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    budget_s = minutes * 60.0
    started = time.perf_counter()
    losses: list[float] = []
    step = 0
    while step < max_steps and time.perf_counter() - started < budget_s:
        clean = np.empty((batch, patch, patch, 3), dtype=np.float32)
        for i in range(batch):
            im = images[rng.choice(len(images), p=weights)]
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
        frac = min(1.0, (time.perf_counter() - started) / budget_s, step / max_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * frac))
        loss = torch.nn.functional.mse_loss(model(x_t), y_t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
        if step % 200 == 0:
            log(f"step {step}: loss {np.mean(losses[-200:]):.6f} ({time.perf_counter() - started:.0f} s)")
    seconds = time.perf_counter() - started
    model.eval()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS), metadata={"format": "pt", "arch": "genimg TinyDAE"})
    (out_dir / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    reports = {sigma: evaluate(model, sigma, seed) for sigma in eval_sigmas}
    n_params = sum(p.numel() for p in model.parameters())
    summary = {"steps": step, "seconds": round(seconds, 1), "batch": batch, "patch": patch, "lr": lr,
               "final_loss": float(np.mean(losses[-200:])) if losses else None, "parameters": n_params,
               "bytes": (out_dir / WEIGHTS).stat().st_size,
               "evaluations": [reports[sigma] for sigma in eval_sigmas]}
    (out_dir / "MODEL_CARD.md").write_text(_model_card(summary))
    log(f"saved {out_dir / WEIGHTS}: " + ", ".join(f"gain {r['mean_gain_db']:.2f} dB at sigma {r['sigma']:g}"
                                                   for r in summary["evaluations"]))
    return summary


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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m genimg train dae``: train, save and evaluate; returns the summary (JSON-able)."""
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


if __name__ == "__main__":
    main()
