"""The diffusion model's autoencoder: its own training stage before the UNet's, and latents.

The autoencoder is trained once per run folder (``<out>/vae``), then every training image
is encoded once (:func:`encode_latents`) and the UNet learns on those cached latents.
This stage keeps its own small resume file (``vae_partial.*``) rather than the loop's
checkpoints: it runs once, before the loop, and its result is a diffusers model folder.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from genimg.training.checkpoints import write_json
from genimg.training.data import to_unit


def train_autoencoder(vae_dir: Path, cfg: dict, images: np.ndarray, *, steps: int, batch_size: int, lr: float, seed: int,
              latent_noise: float = 0.05, log=print):
    """Train (or load) the diffusion model's autoencoder on uint8 ``images``; returns it (eval mode).

    Loss: L1 + MSE reconstruction + a tiny KL (or, for the deterministic patch autoencoder,
    a latent-norm penalty and decoding from noisy latents). A finished autoencoder in
    ``vae_dir`` is loaded instead; a partial one (saved every 5 minutes beside it) is
    resumed, its optimizer restarting.
    """
    from safetensors.torch import load_file, save_file

    from genimg.embedded.diffusion import build_vae, vae_class

    if (vae_dir / "config.json").exists():
        name = json.loads((vae_dir / "config.json").read_text()).get("_class_name", "AutoencoderKL")
        return vae_class(name).from_pretrained(str(vae_dir), use_safetensors=True)
    torch.manual_seed(seed)
    vae = build_vae(cfg)
    partial = vae_dir.parent / "vae_partial.safetensors"
    state_path = vae_dir.parent / "vae_partial.json"
    start = 0
    if partial.exists() and state_path.exists():
        vae.load_state_dict(load_file(str(partial)))
        start = json.loads(state_path.read_text())["step"]
        log(f"vae: resumed at step {start}")
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator()
    n = len(images)
    vae.train()
    t0, last_save = time.time(), time.time()
    for step in range(start, steps):
        g.manual_seed(seed * 1_000_003 + step)
        idx = np.sort(torch.randint(0, n, (batch_size,), generator=g).numpy())
        x = to_unit(images[idx])
        for group in opt.param_groups:  # warmup then cosine decay to 5 %
            group["lr"] = lr * min(1.0, (step + 1) / 100) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        post = vae.encode(x).latent_dist
        z = post.sample(generator=g)
        if hasattr(post, "kl"):
            kl = post.kl().mean() / z[0].numel()
        else:  # deterministic AE: keep latents bounded, decode from noisy latents for robustness
            kl = z.pow(2).mean()
            z = z + latent_noise * z.detach().std() * torch.randn(z.shape, generator=g)
        rec = vae.decode(z).sample
        l1 = (rec - x).abs().mean()
        mse = (rec - x).pow(2).mean()
        loss = l1 + mse + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"vae: step {step} l1 {l1.item():.4f} mse {mse.item():.5f} kl {kl.item():.3f} "
                f"({(time.time() - t0) / (step - start + 1):.2f}s/step)")
        if time.time() - last_save > 300:
            save_file(vae.state_dict(), str(partial))
            write_json(state_path, {"step": step + 1})
            last_save = time.time()
    vae.eval()
    vae_dir.mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(str(vae_dir), safe_serialization=True)
    for p in (partial, state_path):
        p.unlink(missing_ok=True)
    return vae


@torch.no_grad()
def encode_latents(vae, images: np.ndarray, path: Path, log=print, bs: int = 256):
    """Posterior means of all uint8 ``images`` under ``vae`` (fp16), cached as ``path``; returns them."""
    if path.exists():
        lat = np.load(path)
    else:
        t0 = time.time()
        out = []
        for i in range(0, len(images), bs):
            out.append(vae.encode(to_unit(images[i:i + bs])).latent_dist.mean.numpy().astype(np.float16))
        lat = np.concatenate(out)
        np.save(path, lat)
        log(f"latents: encoded {len(images)} images to {lat.shape[1:]} in {time.time() - t0:.0f}s")
    return lat


@torch.no_grad()
def vae_reconstruction_metrics(vae, size: int, log=print, world: str = "shapes") -> dict:
    """Evaluator scores of the evaluation scenes' ground truth at ``size`` px vs their reconstructions.

    Returns ``{"truth", "reconstruction", "l1"}``: the ``world``'s metrics of both and the mean
    absolute pixel error (0..1): what the latent space costs before any diffusion.
    """
    from genimg.training.worlds import get_world

    w = get_world(world)
    scenes = w.eval_scenes()
    truth = w.render_scenes(scenes, size)
    with torch.no_grad():
        rec = torch.cat([vae.decode(vae.encode(to_unit(truth[i:i + 64])).latent_dist.mean).sample
                         for i in range(0, len(truth), 64)])
    rec_u8 = np.clip(np.rint((rec.permute(0, 2, 3, 1).numpy() + 1) * 127.5), 0, 255).astype(np.uint8)
    metrics = {"truth": w.score(list(truth), scenes), "reconstruction": w.score(list(rec_u8), scenes),
               "l1": float(np.abs(rec_u8.astype(np.float32) - truth).mean() / 255)}
    log(f"vae: reconstruction all {metrics['reconstruction']['all']:.3f} (truth {metrics['truth']['all']:.3f}), "
        f"checks {json.dumps({k: round(v, 3) for k, v in metrics['reconstruction']['checks'].items()})}, "
        f"l1 {metrics['l1']:.4f}")
    return metrics
