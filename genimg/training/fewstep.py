"""The embedded few-step model: latent consistency distillation of the embedded diffusion model.

``python -m genimg train fewstep --teacher runs/diffusion`` distils the teacher's latest
checkpoint into a student UNet of the same architecture that samples in 1-4 steps with
diffusers' ``LCMScheduler`` and no classifier-free guidance pass (the teacher's guidance is
baked in), following Latent Consistency Models (Luo et al. 2023) and diffusers'
``train_lcm_distill_sd_wds.py``:

* the student starts from the teacher's EMA weights; a target network is an EMA of the
  student (decay 0.95);
* each step draws a point ``t_n`` of a 50-point DDIM grid (``t_n = 20 n - 1``, the grid
  ``LCMScheduler`` samples on), noises cached training latents to ``t_n``, runs one guided
  DDIM step of the frozen teacher to ``t_{n-1}``, and pulls the student's consistency
  function ``f(x_{t_n}, t_n)`` towards the target network's ``f(x_{t_{n-1}}, t_{n-1})``
  (pseudo-Huber loss); ``f = c_skip(t) x + c_out(t) x0_pred`` with LCMScheduler's own
  boundary scalings, so training and sampling agree by construction.

The distilled model is an :class:`~genimg.embedded.diffusion.EmbeddedDiffusionPipeline`
whose scheduler is an ``LCMScheduler``: it loads with ``load_embedded_diffusion``.
Data, text states, the autoencoder and latents are the teacher run's cached ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genimg.errors import GenimgError
from genimg.training.autoencoder import encode_latents
from genimg.training.checkpoints import (latest_checkpoint, load_optimizer_tensors, load_tensors, optimizer_tensors,
                                         read_state, write_json)
from genimg.training.data import encode_captions, prepare_data
from genimg.training.diffusion import export
from genimg.training.ema import EMA
from genimg.training.evaluation import evaluate_pipeline, sample_grid
from genimg.training.loop import Cadence, RunResult, Trainer, fit
from genimg.training.registry import register_trainer

DEFAULT_TEACHER = Path("runs/diffusion")
DEFAULT_OUT = Path("runs/fewstep")
DEFAULT_ASSETS = Path("assets/embedded/fewstep")
DDIM_POINTS = 50  # LCMScheduler's default original_inference_steps
TARGET_DECAY = 0.95
HUBER_C = 0.001


def lcm_scheduler(teacher_scheduler_config: dict):
    """The LCMScheduler matching the teacher's noise schedule and parameterisation."""
    from diffusers import LCMScheduler

    cfg = {k: v for k, v in dict(teacher_scheduler_config).items()
           if k in ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "prediction_type")}
    return LCMScheduler(**cfg, original_inference_steps=DDIM_POINTS, timestep_scaling=10.0, set_alpha_to_one=True)


def _boundary(scheduler, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LCMScheduler's (c_skip, c_out) for a batch of timesteps, as (B, 1, 1, 1) tensors."""
    pairs = [scheduler.get_scalings_for_boundary_condition_discrete(int(v)) for v in t]
    c_skip = torch.tensor([p[0] for p in pairs], dtype=torch.float32).view(-1, 1, 1, 1)
    c_out = torch.tensor([p[1] for p in pairs], dtype=torch.float32).view(-1, 1, 1, 1)
    return c_skip, c_out


def _x0_eps(v: torch.Tensor, x: torch.Tensor, alpha_bar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted clean sample and noise from a v-prediction (Salimans & Ho 2022)."""
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    return a * x - s * v, s * x + a * v


def teacher_run_from_export(export_dir: Path, run_dir: Path, *, n_data: int = 40000, seed: int = 0,
                            log=print) -> Path:
    """Turn an exported diffusion model (e.g. ``assets/embedded/diffusion``) into a teacher run folder.

    Distillation needs the teacher's UNet, its autoencoder, and training latents and caption
    states; a training run folder holds all of them, a fresh checkout only the export. This
    writes, under ``run_dir``: ``train_config.json``, ``vae/`` (the export's), ``data/``
    (``n_data`` grammar scenes from ``seed``, their MiniLM states and latents encoded by the
    export's autoencoder: the cache layout ``train_diffusion`` uses) and ``ckpt-<steps>/``
    whose ``ema.safetensors`` holds the exported UNet (fp16 values in fp32). Cached parts are
    reused. Returns ``run_dir``; raises GenimgError when the export is not a diffusion model
    of the shipped architecture.
    """
    from safetensors.torch import load_file, save_file

    from genimg.embedded.diffusion import CONFIGS, model_config, vae_class
    from genimg.embedded.text import load_text_encoder

    export_dir, run_dir = Path(export_dir), Path(run_dir)
    card_path, unet_dir = export_dir / "model_card.json", export_dir / "unet"
    if not (card_path.exists() and (unet_dir / "config.json").exists() and (export_dir / "vae" / "config.json").exists()):
        raise GenimgError(f"{export_dir} is not an exported embedded diffusion model (model_card.json, unet/, vae/)")
    card = json.loads(card_path.read_text())
    exported_unet = json.loads((unet_dir / "config.json").read_text())

    def same(a, b):
        return list(a) == list(b) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b

    names = [name for name in CONFIGS
             if all(same(v, exported_unet.get(k, v)) for k, v in CONFIGS[name]["unet"].items())]
    if not names:
        raise GenimgError(f"{export_dir}'s UNet matches none of the embedded configs ({', '.join(CONFIGS)})")
    cfg = model_config(names[0])
    size = int(card.get("image_size", cfg["image_size"]))
    steps = int(card.get("steps", 0))
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(export_dir / "vae", run_dir / "vae", dirs_exist_ok=True)
    write_json(run_dir / "train_config.json", {
        "config": names[0], "model": cfg, "n_data": n_data, "seed": seed, "size": size,
        "guidance": card.get("guidance", 4.0), "caption_dropout": card.get("caption_dropout", 0.1),
        "vae_steps": card.get("vae_steps"), "from_export": str(export_dir), "eval_seeds": [0, 1], "eval_steps": 20})
    data_dir = run_dir / "data"
    images, captions = prepare_data(data_dir, n_data, seed, size, log=log)
    tag = f"{n_data}_{seed}_{size}"
    encode_captions(data_dir, captions, tag, load_text_encoder(), log=log)
    vae_cfg = json.loads((run_dir / "vae" / "config.json").read_text())
    vae = vae_class(vae_cfg.get("_class_name", "AutoencoderKL")).from_pretrained(str(run_dir / "vae"), use_safetensors=True)
    with torch.no_grad():
        # the export's autoencoder is fp16; encode in fp32 as training did
        encode_latents(vae.float().eval(), images, data_dir / f"latents_{tag}.npy", log=log)
    ck = run_dir / f"ckpt-{steps:07d}"
    if not (ck / "ema.safetensors").exists():
        ck.mkdir(exist_ok=True)
        weights = load_file(str(unet_dir / "diffusion_pytorch_model.safetensors"))
        save_file({k: v.float().contiguous() for k, v in weights.items()}, str(ck / "ema.safetensors"))
        write_json(ck / "state.json", {"step": steps, "from_export": str(export_dir)})
    log(f"teacher run {run_dir} from {export_dir} (step {steps}, {n_data} scenes)")
    return run_dir


def _teacher_run(teacher: Path, out_dir: Path, log=print, scenes: int = 40000):
    """The teacher's run folder, latest checkpoint and training config; GenimgError if absent.

    ``teacher`` may also be an exported model folder: it is turned into a run folder under
    ``out_dir/teacher`` first (:func:`teacher_run_from_export`).
    """
    teacher = Path(teacher)
    if (teacher / "model_card.json").exists() and (teacher / "unet").is_dir():
        teacher = teacher_run_from_export(teacher, Path(out_dir) / "teacher", n_data=scenes, log=log)
    run = teacher if (teacher / "train_config.json").exists() else teacher.parent
    ck = teacher if (teacher / "ema.safetensors").exists() else latest_checkpoint(run)
    if ck is None or not (run / "train_config.json").exists():
        raise GenimgError(f"no diffusion checkpoint under {teacher}; train the teacher first: "
                          "python -m genimg train diffusion")
    return run, ck, json.loads((run / "train_config.json").read_text())


class FewstepTrainer(Trainer):
    """Latent consistency distillation of a diffusion teacher into a few-step student.

    ``teacher`` is a diffusion run folder, one of its checkpoints, or an exported model
    (then ``teacher_scenes`` grammar scenes are rendered and encoded as distillation data).
    ``guidance`` defaults to the teacher's evaluation guidance. A checkpoint holds the
    student, the target network and the optimizer; a resumed run keeps distilling from the
    teacher checkpoint it started with. Evaluates the target network (``eval_steps`` LCM
    steps, no guidance pass) every ``eval_every`` steps or ``eval_minutes`` minutes, and
    once before the first step: the teacher sampled in few steps, the baseline to beat.
    """

    name = "fewstep"
    evaluate_at_start = True

    def __init__(self, *, teacher=DEFAULT_TEACHER, steps: int = 1500, batch_size: int = 32, lr: float = 1e-4,
                 seed: int = 0, guidance: float | None = None, eval_every: int = 500, eval_minutes: float = 12.0,
                 ckpt_minutes: float = 5.0, eval_steps: int = 4, eval_seeds=(0, 1), eval_limit: int | None = None,
                 threads="auto", teacher_scenes: int = 40000, log=print):
        evaluates = eval_every > 0
        super().__init__(Cadence(steps=steps, eval_every=max(0, eval_every),
                                 eval_seconds=eval_minutes * 60 if evaluates and eval_minutes > 0 else None,
                                 ckpt_seconds=ckpt_minutes * 60, log_every=25), threads=threads, log=log)
        self.teacher, self.teacher_scenes, self.guidance = teacher, teacher_scenes, guidance
        self.steps, self.batch_size, self.lr, self.seed = steps, batch_size, lr, seed
        self.eval_steps, self.eval_seeds, self.eval_limit = eval_steps, eval_seeds, eval_limit

    def setup(self, out_dir: Path, resume_from: Path | None) -> None:
        """Resolve the teacher, load its cached latents, caption states and autoencoder; build teacher and student.

        Raises GenimgError when the teacher run, its cached data or (on resume) the
        teacher checkpoint the run started from is missing.
        """
        from genimg.embedded.diffusion import build_unet, vae_class
        from genimg.embedded.text import encode_prompts, load_text_encoder

        log = self.log
        run, teacher_ck, tcfg = _teacher_run(self.teacher, out_dir, log, scenes=self.teacher_scenes)
        cfg = self.cfg = tcfg["model"]
        guidance = self.guidance = float(tcfg.get("guidance", 4.0) if self.guidance is None else self.guidance)
        if resume_from is not None:
            teacher_ck = Path(read_state(resume_from)["teacher_checkpoint"])
            if not (teacher_ck / "ema.safetensors").exists():
                raise GenimgError(f"the teacher checkpoint {teacher_ck} this run started from is gone; "
                                  "start over with --no-resume")
        tag = f"{tcfg['n_data']}_{tcfg['seed']}_{tcfg['size']}"
        data = run / "data"
        needed = [data / f"latents_{tag}.npy"] + [data / f"text_{tag}_{k}.npy" for k in ("states", "mask", "pooled")]
        missing = [p.name for p in needed if not p.exists()]
        if missing or not (run / "vae" / "config.json").exists():
            raise GenimgError(f"the teacher run {run} lacks its cached latents/text states/VAE "
                              f"({', '.join(missing) or 'vae'}); re-run `python -m genimg train diffusion` there first")
        # The export reads the VAE and the model config from this run's folder.
        shutil.copytree(run / "vae", out_dir / "vae", dirs_exist_ok=True)
        self.teacher_ck = teacher_ck
        self.teacher_steps = int(read_state(teacher_ck)["step"])
        write_json(out_dir / "train_config.json", {
            **{k: tcfg[k] for k in ("n_data", "seed", "size", "caption_dropout", "vae_steps") if k in tcfg},
            "model": cfg, "config": tcfg.get("config"), "method": "latent consistency distillation",
            "teacher": str(run), "teacher_checkpoint": str(teacher_ck), "teacher_steps": self.teacher_steps,
            "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "distill_seed": self.seed,
            "guidance": guidance, "ddim_points": DDIM_POINTS, "target_decay": TARGET_DECAY, "huber_c": HUBER_C,
            "eval_seeds": list(self.eval_seeds), "eval_steps": self.eval_steps})

        vae_cfg = json.loads((run / "vae" / "config.json").read_text())
        autoencoder = vae_class(vae_cfg.get("_class_name", "AutoencoderKL"))
        self.vae = autoencoder.from_pretrained(str(run / "vae"), use_safetensors=True)
        self.vae.eval().requires_grad_(False)
        scale, shift = float(vae_cfg["scaling_factor"]), float(vae_cfg.get("shift_factor") or 0.0)
        self.train_x = ((torch.from_numpy(np.load(needed[0])).float() - shift) * scale).half()
        self.states_t, self.mask_t, self.pooled_t = (torch.from_numpy(np.load(p)) for p in needed[1:])
        self.te, self.tok = load_text_encoder()
        self.empty = encode_prompts(self.te, self.tok, [""], max_length=self.states_t.shape[1])

        self.teacher_unet = build_unet(cfg)
        self.teacher_unet.load_state_dict(load_tensors(teacher_ck, "ema"))
        self.teacher_unet.eval().requires_grad_(False)
        self.student = build_unet(cfg)
        self.student.load_state_dict(self.teacher_unet.state_dict())
        self.target = EMA(self.student, decay=TARGET_DECAY)
        self.opt = torch.optim.AdamW(self.student.parameters(), lr=self.lr, weight_decay=0.0)
        log(f"fewstep: teacher {teacher_ck} ({self.teacher_steps} steps), guidance {guidance}, "
            f"data {tuple(self.train_x.shape)}")
        self.scheduler = lcm_scheduler(cfg["scheduler"])
        self.alphas = self.scheduler.alphas_cumprod.float()
        self.k = cfg["scheduler"].get("num_train_timesteps", 1000) // DDIM_POINTS
        self.n_params = sum(p.numel() for p in self.student.parameters())
        self.student.train()
        self.g = torch.Generator()

    def step(self, step: int) -> dict[str, float]:
        """One consistency-distillation step (guided teacher DDIM step, target network, pseudo-Huber); {"loss"}."""
        g, batch_size, alphas, k = self.g, self.batch_size, self.alphas, self.k
        g.manual_seed(self.seed * 1_000_003 + step + 7)
        idx = torch.randint(0, len(self.train_x), (batch_size,), generator=g)
        x0 = self.train_x[idx].float()
        enc, msk, pooled = self.states_t[idx].float(), self.mask_t[idx].long(), self.pooled_t[idx].float()
        e_s, e_m, e_p = self.empty
        noise = torch.randn(x0.shape, generator=g)
        point = torch.randint(1, DDIM_POINTS + 1, (batch_size,), generator=g)
        t = point * k - 1
        t_prev = (t - k).clamp(min=0)
        a_t = alphas[t].view(-1, 1, 1, 1)
        a_prev = alphas[t_prev].view(-1, 1, 1, 1)
        x_t = a_t.sqrt() * x0 + (1 - a_t).sqrt() * noise

        with torch.no_grad():
            both = self.teacher_unet(torch.cat([x_t, x_t]), torch.cat([t, t]),
                                     encoder_hidden_states=torch.cat([e_s.expand(batch_size, -1, -1), enc]),
                                     encoder_attention_mask=torch.cat([e_m.expand(batch_size, -1).long(), msk]),
                                     class_labels=torch.cat([e_p.expand(batch_size, -1), pooled])).sample
            v_unc, v_cond = both.chunk(2)
            x0_t, eps_t = _x0_eps(v_unc + self.guidance * (v_cond - v_unc), x_t, a_t)
            x_prev = a_prev.sqrt() * x0_t + (1 - a_prev).sqrt() * eps_t  # one guided DDIM step
            v_tgt = self.target.model(x_prev, t_prev, encoder_hidden_states=enc, encoder_attention_mask=msk,
                                      class_labels=pooled).sample
            skip_p, out_p = _boundary(self.scheduler, t_prev)
            tgt = skip_p * x_prev + out_p * _x0_eps(v_tgt, x_prev, a_prev)[0]

        v = self.student(x_t, t, encoder_hidden_states=enc, encoder_attention_mask=msk, class_labels=pooled).sample
        skip, out = _boundary(self.scheduler, t)
        pred = skip * x_t + out * _x0_eps(v, x_t, a_t)[0]
        loss = (torch.sqrt((pred - tgt).pow(2) + HUBER_C ** 2) - HUBER_C).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
        self.opt.step()
        self.target.update(self.student)  # LCM's fixed 0.95, no warm-up ramp
        return {"loss": loss.item()}

    def checkpoint_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """The student, the target network and the optimizer moments."""
        return {"unet": self.student.state_dict(), "ema": self.target.state_dict(),
                "optimizer": optimizer_tensors(self.opt)}

    def load_checkpoint(self, checkpoint: Path) -> None:
        """Restore student, target network and optimizer from ``checkpoint``."""
        self.student.load_state_dict(load_tensors(checkpoint, "unet"))
        self.target.model.load_state_dict(load_tensors(checkpoint, "ema"))
        load_optimizer_tensors(self.opt, load_tensors(checkpoint, "optimizer"))

    def state(self) -> dict[str, Any]:
        """Parameter count and the teacher checkpoint (a resumed run keeps its teacher)."""
        return {"n_params": self.n_params, "teacher_checkpoint": str(self.teacher_ck),
                "teacher_steps": self.teacher_steps, "seed": self.seed}

    best_metric = ("single_colour_bg_shape", "max")

    def _eval_pipeline(self):
        from genimg.embedded.diffusion import build_pipeline

        return build_pipeline(self.cfg, text_encoder=self.te, tokenizer=self.tok, unet=self.target.model, vae=self.vae,
                              scheduler=lcm_scheduler(self.cfg["scheduler"]), seed=None)

    def samples(self):
        """A grid of the target network's images (fixed prompts across, seeds down) for the trackers."""
        grid = sample_grid(self._eval_pipeline(), steps=self.eval_steps, guidance=0.0)
        self.student.train()
        return grid

    def evaluate(self) -> dict[str, Any]:
        """Faithfulness of the target network sampled in ``eval_steps`` LCM steps without guidance."""
        from genimg.scenes.grammar import eval_prompt_set

        pipe = self._eval_pipeline()
        scenes = eval_prompt_set()[:self.eval_limit] if self.eval_limit else None
        metrics = evaluate_pipeline(pipe, seeds=self.eval_seeds, steps=self.eval_steps, guidance=0.0, scenes=scenes)
        self.student.train()
        return {"eval_steps": self.eval_steps, **metrics}

    def export(self, result: RunResult, assets: Path) -> dict[str, Any]:
        """:func:`export_fewstep` of the final checkpoint; returns {"assets"}."""
        return {"assets": str(export_fewstep(result.checkpoint, assets, log=self.log))}


def train_fewstep(out_dir=DEFAULT_OUT, *, resume: bool = True, **options) -> Path:
    """Distil the teacher into a few-step student in ``out_dir``; returns the final checkpoint folder.

    ``options`` are :class:`FewstepTrainer`'s (teacher, steps, batch_size, lr, guidance,
    eval_every, ..., log). Resumable from ``out_dir``. Raises GenimgError when the teacher
    run or its cached data is missing.
    """
    return fit(FewstepTrainer(**options), out_dir, resume=resume).checkpoint


def export_fewstep(checkpoint=DEFAULT_OUT, assets_dir=DEFAULT_ASSETS, *, log=print) -> Path:
    """Write the distilled student (target network) + VAE + LCMScheduler + model card to ``assets_dir``.

    ``checkpoint`` is a checkpoint folder or a run folder (its latest checkpoint). Returns the
    assets folder; raises GenimgError when there is no few-step checkpoint there.
    """
    checkpoint = Path(checkpoint)
    if not (checkpoint / "state.json").exists():
        checkpoint = latest_checkpoint(checkpoint) or checkpoint
    run = checkpoint.parent
    if not (run / "train_config.json").exists():
        raise GenimgError(f"no few-step checkpoint under {checkpoint}; distil first: python -m genimg train fewstep")
    tcfg = json.loads((run / "train_config.json").read_text())
    card = {
        "name": "genimg embedded few-step (latent consistency distillation)",
        "method": "latent consistency distillation (Luo et al. 2023) of genimg-diffusion: 50-point DDIM grid, "
                  f"teacher guidance {tcfg['guidance']} baked in, target network EMA {TARGET_DECAY}, pseudo-Huber loss",
        "teacher_checkpoint": tcfg["teacher_checkpoint"],
        "teacher_steps": tcfg["teacher_steps"],
        "distill_batch_size": tcfg["batch_size"],
        "distill_lr": tcfg["lr"],
        "seed": tcfg["distill_seed"],
        "eval_protocol": f"eval_prompt_set() x seeds {tcfg['eval_seeds']}, {tcfg['eval_steps']} LCM steps, "
                         "no guidance pass, target-network weights",
    }
    return export(checkpoint, assets_dir, scheduler=lcm_scheduler(tcfg["model"]["scheduler"]), card=card, log=log)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m genimg train fewstep",
                                description="Distil the embedded diffusion model into a 1-4 step LCM.")
    p.add_argument("--teacher", type=Path, default=DEFAULT_TEACHER, help="diffusion run folder, checkpoint, or exported model folder (e.g. assets/embedded/diffusion)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--teacher-scenes", type=int, default=40000,
                   help="scenes to render as distillation data when --teacher is an exported model")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=None, help="teacher guidance to bake in (default: the teacher's)")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-minutes", type=float, default=12.0)
    p.add_argument("--threads", default="auto")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--export", action="store_true", help="export the final checkpoint to --assets")
    p.add_argument("--export-only", action="store_true")
    p.add_argument("--assets", type=Path, default=DEFAULT_ASSETS)
    return p


@register_trainer("fewstep")
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m genimg train fewstep [options]``: distil (resumably), export with ``--export``.

    Returns the run's summary (checkpoint, steps, train_seconds, and assets when exported),
    or {"assets"} with ``--export-only``. Raises GenimgError for a user error (no teacher).
    """
    args = _parser().parse_args(argv)
    if args.export_only:
        return {"assets": str(export_fewstep(args.out, args.assets))}
    trainer = FewstepTrainer(teacher=args.teacher, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, guidance=args.guidance, eval_every=args.eval_every,
                             eval_minutes=args.eval_minutes,
                             threads=args.threads if args.threads == "auto" else int(args.threads),
                             teacher_scenes=args.teacher_scenes)
    return fit(trainer, args.out, resume=not args.no_resume, export_to=args.assets if args.export else None).summary()
