"""Training data of the embedded models: grammar scenes and their caption states, cached on disk.

Every embedded trainer learns from the same kind of data: ``n`` scenes of the scene grammar
rendered once (:func:`prepare_data`) and their captions encoded once by the frozen MiniLM
(:func:`encode_captions`). Both are cached as ``.npy`` in a data folder, so a resumed run,
another trainer (the one-step models read the diffusion run's cache by default) or the
distillation do not pay for them again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from genimg.training.checkpoints import write_json
from genimg.training.worlds import downsample, get_world


def prepare_data(data_dir: Path, n: int, seed: int, size: int, log=print, world: str = "shapes"):
    """Render ``n`` scenes of ``world`` (:mod:`genimg.training.worlds`) from ``seed`` at ``size`` px, cached
    under ``data_dir``.

    Returns (uint8 images (n, size, size, 3), captions). Raises GenimgError for an unknown world.
    """
    w = get_world(world)
    data_dir.mkdir(parents=True, exist_ok=True)
    img_path = data_dir / f"{w.data_tag}images_{n}_{seed}_{size}.npy"
    cap_path = data_dir / f"{w.data_tag}captions_{n}_{seed}_{size}.json"
    if img_path.exists() and cap_path.exists():
        return np.load(img_path), json.loads(cap_path.read_text())
    t0 = time.time()
    images, captions = w.make_dataset(n, seed, size)
    np.save(img_path, images)
    write_json(cap_path, captions)
    log(f"data: {n} {world} scenes at {size}px in {time.time() - t0:.0f}s")
    return images, captions


def encode_captions(data_dir: Path, captions: list[str], tag: str, encoder, log=print):
    """MiniLM token states of ``captions`` with ``encoder`` = (text encoder, tokenizer), cached as .npy by ``tag``.

    Returns (states (N, L, 384) fp16, mask (N, L) uint8, pooled (N, 384) fp16), L <= 32 tokens.
    """
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
    # Batches of similar length waste less compute on padding.
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


def to_unit(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) images as a float (N, 3, H, W) tensor in [-1, 1]."""
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def load_training_data(data_dir: Path, n_data: int, seed: int, size: int, log=print):
    """The diffusion trainer's 64 px scenes and caption states (same cache), box-downsampled to ``size`` px.

    The grammar renders by box filtering, so this equals a ``size`` px render up to rounding.
    Returns (uint8 images tensor, states fp16, mask uint8, pooled fp16, (text encoder, tokenizer)).
    """
    from genimg.embedded.text import load_text_encoder

    images, captions = prepare_data(Path(data_dir), n_data, seed, 64, log=log)
    te, tok = load_text_encoder()
    states, mask, pooled = encode_captions(Path(data_dir), captions, f"{n_data}_{seed}_64", (te, tok), log=log)
    images = downsample(images, size)
    return (torch.from_numpy(images), torch.from_numpy(states), torch.from_numpy(mask),
            torch.from_numpy(pooled), (te, tok))


def unit_batch(data, idx: torch.Tensor):
    """Rows ``idx`` of :func:`load_training_data`'s (images, states, mask, pooled) as training tensors.

    Returns (images in [-1, 1] (B, 3, H, W), states float, mask long, pooled float).
    """
    images, states, mask, pooled = data
    x = images[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return x, states[idx].float(), mask[idx].long(), pooled[idx].float()
