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
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genimg.errors import GenimgError

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
    from genimg.embedded.train import _json_dump, encode_captions, encode_latents, prepare_data

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
    _json_dump(run_dir / "train_config.json", {
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
        _json_dump(ck / "state.json", {"step": steps, "from_export": str(export_dir)})
    log(f"teacher run {run_dir} from {export_dir} (step {steps}, {n_data} scenes)")
    return run_dir


def _teacher_run(teacher: Path, out_dir: Path, log=print, scenes: int = 40000):
    """The teacher's run folder, latest checkpoint and training config; GenimgError if absent.

    ``teacher`` may also be an exported model folder: it is turned into a run folder under
    ``out_dir/teacher`` first (:func:`teacher_run_from_export`).
    """
    from genimg.embedded.train import latest_checkpoint

    teacher = Path(teacher)
    if (teacher / "model_card.json").exists() and (teacher / "unet").is_dir():
        teacher = teacher_run_from_export(teacher, Path(out_dir) / "teacher", n_data=scenes, log=log)
    run = teacher if (teacher / "train_config.json").exists() else teacher.parent
    ck = teacher if (teacher / "ema.safetensors").exists() else latest_checkpoint(run)
    if ck is None or not (run / "train_config.json").exists():
        raise GenimgError(f"no diffusion checkpoint under {teacher}; train the teacher first: "
                          "python -m genimg train diffusion")
    return run, ck, json.loads((run / "train_config.json").read_text())


def train_fewstep(out_dir=DEFAULT_OUT, *, teacher=DEFAULT_TEACHER, steps: int = 1500, batch_size: int = 32,
                  lr: float = 1e-4, seed: int = 0, guidance: float | None = None, eval_every: int = 500,
                  eval_minutes: float = 12.0, ckpt_minutes: float = 5.0, eval_steps: int = 4, eval_seeds=(0, 1),
                  eval_limit: int | None = None, resume: bool = True, threads="auto", teacher_scenes: int = 40000,
                  log=print) -> Path:
    """Distil the teacher's latest checkpoint into a few-step student; returns the latest checkpoint.

    ``teacher`` is a diffusion run folder, one of its checkpoints, or an exported model
    (then ``teacher_scenes`` grammar scenes are rendered and encoded as distillation data).

    ``guidance`` defaults to the teacher's evaluation guidance. Resumable from ``out_dir``
    (``ckpt-*`` folders: student, target network, optimizer). Raises GenimgError when the
    teacher run or its cached data is missing.
    """
    from safetensors.torch import load_file

    from genimg.embedded.diffusion import build_pipeline, build_unet, vae_class
    from genimg.embedded.text import encode_prompts, load_text_encoder
    from genimg.embedded.train import (EMA, ThreadTuner, _json_dump, _optim_from_tensors, evaluate_pipeline,
                                       final_checkpoint, latest_checkpoint, save_checkpoint)

    tuner = ThreadTuner(threads, log=log)
    tuner.probe()
    run, teacher_ck, tcfg = _teacher_run(teacher, out_dir, log, scenes=teacher_scenes)
    cfg = tcfg["model"]
    guidance = float(tcfg.get("guidance", 4.0) if guidance is None else guidance)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ck = latest_checkpoint(out_dir) if resume else None
    if ck is not None:  # resuming: keep distilling from the teacher we started with
        st = json.loads((ck / "state.json").read_text())
        teacher_ck = Path(st["teacher_checkpoint"])
        if not (teacher_ck / "ema.safetensors").exists():
            raise GenimgError(f"the teacher checkpoint {teacher_ck} this run started from is gone; "
                              "start over with --no-resume")
    elif not resume:
        for p in out_dir.glob("ckpt-*"):
            shutil.rmtree(p)
    tag = f"{tcfg['n_data']}_{tcfg['seed']}_{tcfg['size']}"
    data = run / "data"
    needed = [data / f"latents_{tag}.npy"] + [data / f"text_{tag}_{k}.npy" for k in ("states", "mask", "pooled")]
    missing = [p.name for p in needed if not p.exists()]
    if missing or not (run / "vae" / "config.json").exists():
        raise GenimgError(f"the teacher run {run} lacks its cached latents/text states/VAE ({', '.join(missing) or 'vae'}); "
                          "re-run `python -m genimg train diffusion` there first")
    # The export reads the VAE and the model config from this run's folder.
    shutil.copytree(run / "vae", out_dir / "vae", dirs_exist_ok=True)
    teacher_steps = int(json.loads((teacher_ck / "state.json").read_text())["step"])
    _json_dump(out_dir / "train_config.json", {
        **{k: tcfg[k] for k in ("n_data", "seed", "size", "caption_dropout", "vae_steps") if k in tcfg},
        "model": cfg, "config": tcfg.get("config"), "method": "latent consistency distillation",
        "teacher": str(run), "teacher_checkpoint": str(teacher_ck), "teacher_steps": teacher_steps,
        "steps": steps, "batch_size": batch_size, "lr": lr, "distill_seed": seed, "guidance": guidance,
        "ddim_points": DDIM_POINTS, "target_decay": TARGET_DECAY, "huber_c": HUBER_C,
        "eval_seeds": list(eval_seeds), "eval_steps": eval_steps})

    vae_cfg = json.loads((run / "vae" / "config.json").read_text())
    vae = vae_class(vae_cfg.get("_class_name", "AutoencoderKL")).from_pretrained(str(run / "vae"), use_safetensors=True)
    vae.eval().requires_grad_(False)
    scale, shift = float(vae_cfg["scaling_factor"]), float(vae_cfg.get("shift_factor") or 0.0)
    train_x = ((torch.from_numpy(np.load(needed[0])).float() - shift) * scale).half()
    states_t, mask_t, pooled_t = (torch.from_numpy(np.load(p)) for p in needed[1:])
    te, tok = load_text_encoder()
    L = states_t.shape[1]
    e_s, e_m, e_p = encode_prompts(te, tok, [""], max_length=L)

    teacher_unet = build_unet(cfg)
    teacher_unet.load_state_dict(load_file(str(teacher_ck / "ema.safetensors")))
    teacher_unet.eval().requires_grad_(False)
    student = build_unet(cfg)
    student.load_state_dict(teacher_unet.state_dict())
    target = EMA(student, decay=TARGET_DECAY)
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    step, train_seconds, history = 0, 0.0, []
    if ck is not None:
        student.load_state_dict(load_file(str(ck / "unet.safetensors")))
        target.model.load_state_dict(load_file(str(ck / "ema.safetensors")))
        _optim_from_tensors(opt, load_file(str(ck / "optimizer.safetensors")))
        st = json.loads((ck / "state.json").read_text())
        step, train_seconds = int(st["step"]), float(st.get("train_seconds", 0.0))
        log(f"resumed from {ck} at step {step}")
    log(f"fewstep: teacher {teacher_ck} ({teacher_steps} steps), guidance {guidance}, data {tuple(train_x.shape)}")

    scheduler = lcm_scheduler(cfg["scheduler"])
    alphas = scheduler.alphas_cumprod.float()
    k = cfg["scheduler"].get("num_train_timesteps", 1000) // DDIM_POINTS
    n_params = sum(p.numel() for p in student.parameters())

    def state():
        return {"train_seconds": train_seconds, "n_params": n_params, "teacher_checkpoint": str(teacher_ck),
                "teacher_steps": teacher_steps, "seed": seed}

    def run_eval():
        t0 = time.time()
        pipe = build_pipeline(cfg, text_encoder=te, tokenizer=tok, unet=target.model, vae=vae,
                              scheduler=lcm_scheduler(cfg["scheduler"]), seed=None)
        from genimg.scenes.grammar import eval_prompt_set

        scenes = eval_prompt_set()[:eval_limit] if eval_limit else None
        metrics = evaluate_pipeline(pipe, seeds=eval_seeds, steps=eval_steps, guidance=0.0, scenes=scenes)
        rec = {"step": step, "train_seconds": round(train_seconds, 1), "wall": time.strftime("%Y-%m-%d %H:%M:%S"),
               "loss": float(np.mean(history[-100:])) if history else None, "eval_seconds": round(time.time() - t0, 1),
               "eval_steps": eval_steps, **metrics}
        with open(out_dir / "eval.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        log(f"eval step {step} ({eval_steps} steps): single colour+bg {metrics['single_colour_bg']:.3f} "
            f"+shape {metrics['single_colour_bg_shape']:.3f} relation {metrics['relation']:.3f} all {metrics['all']:.3f}")
        return rec

    if step == 0 and eval_every > 0 and not (out_dir / "eval.jsonl").exists():
        run_eval()  # step 0 = the teacher's weights sampled in few steps: the baseline distillation must beat
    student.train()
    n = len(train_x)
    g = torch.Generator()
    last_ckpt = last_eval = time.time()
    last_eval_step = step
    t_log, s_log = time.time(), step
    while step < steps:
        t_step = time.time()
        g.manual_seed(seed * 1_000_003 + step + 7)
        idx = torch.randint(0, n, (batch_size,), generator=g)
        x0 = train_x[idx].float()
        enc, msk, pooled = states_t[idx].float(), mask_t[idx].long(), pooled_t[idx].float()
        noise = torch.randn(x0.shape, generator=g)
        point = torch.randint(1, DDIM_POINTS + 1, (batch_size,), generator=g)
        t = point * k - 1
        t_prev = (t - k).clamp(min=0)
        a_t = alphas[t].view(-1, 1, 1, 1)
        a_prev = alphas[t_prev].view(-1, 1, 1, 1)
        x_t = a_t.sqrt() * x0 + (1 - a_t).sqrt() * noise

        with torch.no_grad():
            both = teacher_unet(torch.cat([x_t, x_t]), torch.cat([t, t]),
                                encoder_hidden_states=torch.cat([e_s.expand(batch_size, -1, -1), enc]),
                                encoder_attention_mask=torch.cat([e_m.expand(batch_size, -1).long(), msk]),
                                class_labels=torch.cat([e_p.expand(batch_size, -1), pooled])).sample
            v_unc, v_cond = both.chunk(2)
            x0_t, eps_t = _x0_eps(v_unc + guidance * (v_cond - v_unc), x_t, a_t)
            x_prev = a_prev.sqrt() * x0_t + (1 - a_prev).sqrt() * eps_t  # one guided DDIM step
            v_tgt = target.model(x_prev, t_prev, encoder_hidden_states=enc, encoder_attention_mask=msk,
                                 class_labels=pooled).sample
            skip_p, out_p = _boundary(scheduler, t_prev)
            tgt = skip_p * x_prev + out_p * _x0_eps(v_tgt, x_prev, a_prev)[0]

        v = student(x_t, t, encoder_hidden_states=enc, encoder_attention_mask=msk, class_labels=pooled).sample
        skip, out = _boundary(scheduler, t)
        pred = skip * x_t + out * _x0_eps(v, x_t, a_t)[0]
        loss = (torch.sqrt((pred - tgt).pow(2) + HUBER_C ** 2) - HUBER_C).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        with torch.no_grad():  # target network: a plain EMA (LCM's fixed 0.95, no warm-up ramp)
            for e, p in zip(target.model.parameters(), student.parameters()):
                e.lerp_(p.detach(), 1 - TARGET_DECAY)
        step += 1
        history.append(loss.item())
        dt = time.time() - t_step
        train_seconds += dt
        tuner.after_step(step, dt)
        if step % 25 == 0:
            log(f"step {step} loss {np.mean(history[-25:]):.5f} ({(time.time() - t_log) / max(1, step - s_log):.2f}s/step, "
                f"{torch.get_num_threads()} threads, {train_seconds / 60:.1f} train-min)")
            t_log, s_log = time.time(), step
        due = eval_every > 0 and (step - last_eval_step >= eval_every or time.time() - last_eval >= eval_minutes * 60
                                  or step >= steps)
        if due:
            save_checkpoint(out_dir, step, student, target, opt, state())
            last_ckpt = time.time()
            run_eval()
            last_eval, last_eval_step = time.time(), step
            student.train()
        elif time.time() - last_ckpt >= ckpt_minutes * 60:
            save_checkpoint(out_dir, step, student, target, opt, state())
            last_ckpt = time.time()
    ck = final_checkpoint(out_dir, step, lambda: save_checkpoint(out_dir, step, student, target, opt, state()))
    log(f"done: {step} distillation steps, {train_seconds / 60:.1f} train-min")
    return ck


def export_fewstep(checkpoint=DEFAULT_OUT, assets_dir=DEFAULT_ASSETS, *, log=print) -> Path:
    """Write the distilled student (target network) + VAE + LCMScheduler + model card to ``assets_dir``."""
    from genimg.embedded.train import export, latest_checkpoint

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


def main(argv=None) -> int:
    """``python -m genimg train fewstep [options]``; returns an exit code."""
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
    args = p.parse_args(argv)
    try:
        if args.export_only:
            export_fewstep(args.out, args.assets)
            return 0
        ck = train_fewstep(args.out, teacher=args.teacher, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           seed=args.seed, guidance=args.guidance, eval_every=args.eval_every,
                           eval_minutes=args.eval_minutes, resume=not args.no_resume,
                           threads=args.threads if args.threads == "auto" else int(args.threads),
                           teacher_scenes=args.teacher_scenes)
        if args.export:
            export_fewstep(ck, args.assets)
    except GenimgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
