"""The files of a training run folder, written and read in one place.

A run folder (``--out``) holds ``train_config.json`` (what the trainer was asked),
``ckpt-NNNNNNN/`` checkpoints (one safetensors file per named tensor group — weights, EMA,
optimizer moments — and ``state.json`` with the step and counters), and ``eval.jsonl``
(one JSON line per evaluation). Writes are atomic (temporary name, then rename), so an
interrupted run never leaves a half-written checkpoint that a resume would pick up.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from genimg.errors import GenimgError


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """An Adam/AdamW optimizer's moments and step counts as flat tensors (safetensors holds no pickles)."""
    out = {}
    for i, p in enumerate(opt.param_groups[0]["params"]):
        st = opt.state.get(p)
        if not st:
            continue
        out[f"{i}.exp_avg"] = st["exp_avg"].contiguous()
        out[f"{i}.exp_avg_sq"] = st["exp_avg_sq"].contiguous()
        out[f"{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
    return out


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Restore what :func:`optimizer_tensors` saved into ``opt`` (same parameters, same order)."""
    for i, p in enumerate(opt.param_groups[0]["params"]):
        if f"{i}.exp_avg" not in tensors:
            continue
        opt.state[p] = {
            "step": torch.tensor(float(tensors[f"{i}.step"].item())),
            "exp_avg": tensors[f"{i}.exp_avg"].clone(),
            "exp_avg_sq": tensors[f"{i}.exp_avg_sq"].clone(),
        }


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint folder under ``out_dir`` (one with a ``state.json``), or None."""
    ckpts = sorted(p for p in Path(out_dir).glob("ckpt-*") if (p / "state.json").exists())
    return ckpts[-1] if ckpts else None


def read_state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's ``state.json`` (``step``, ``train_seconds`` and the trainer's own entries)."""
    return json.loads((Path(checkpoint) / "state.json").read_text())


def load_tensors(checkpoint: Path, name: str) -> dict[str, torch.Tensor]:
    """The tensor group ``name`` (``<name>.safetensors``) of a checkpoint."""
    from safetensors.torch import load_file

    return load_file(str(Path(checkpoint) / f"{name}.safetensors"))


def save_checkpoint(out_dir: Path, step: int, tensors: dict[str, dict[str, torch.Tensor]], state: dict,
                    keep: int = 2) -> Path:
    """Write ``ckpt-<step>/`` (one safetensors file per entry of ``tensors``, ``state.json`` = ``state`` + step).

    Keeps the newest ``keep`` checkpoints and removes older ones. Returns the new folder.
    """
    from safetensors.torch import save_file

    ck = out_dir / f"ckpt-{step:07d}"
    tmp = out_dir / f".tmp-ckpt-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, group in tensors.items():
        save_file({k: v.contiguous() for k, v in group.items()}, str(tmp / f"{name}.safetensors"))
    write_json(tmp / "state.json", {**state, "step": step})
    shutil.rmtree(ck, ignore_errors=True)
    os.replace(tmp, ck)
    old = sorted(p for p in out_dir.glob("ckpt-*") if p != ck)
    for p in old[:-max(0, keep - 1)] if keep > 1 else old:
        shutil.rmtree(p, ignore_errors=True)
    return ck


def remove_checkpoints(out_dir: Path) -> None:
    """Delete every ``ckpt-*`` folder under ``out_dir`` (a run started over with ``--no-resume``)."""
    for p in Path(out_dir).glob("ckpt-*"):
        shutil.rmtree(p)


def resolve_checkpoint(checkpoint: Path | str, model: str) -> Path:
    """``checkpoint`` itself, or the latest checkpoint when it names a run folder.

    Raises GenimgError (saying how to train ``model``) when a run folder holds no checkpoint.
    """
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir() and not (checkpoint / "state.json").exists():
        found = latest_checkpoint(checkpoint)
        if found is None:
            raise GenimgError(f"no checkpoint under {checkpoint}; train first with: python -m genimg train {model}")
        checkpoint = found
    return checkpoint


def append_eval(out_dir: Path, record: dict) -> None:
    """Append one evaluation record as a JSON line to ``<out_dir>/eval.jsonl``."""
    with open(Path(out_dir) / "eval.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def eval_record(run_dir: Path, step: int) -> dict | None:
    """The run's evaluation at ``step`` (the last one there), else its latest evaluation, else None."""
    path = Path(run_dir) / "eval.jsonl"
    evals = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    at_step = [e for e in evals if e["step"] == step]
    return at_step[-1] if at_step else (evals[-1] if evals else None)


def publish_export(tmp: Path, assets_dir: Path, card: dict, readme_text: str, source: Path, log=print) -> Path:
    """Finish an export prepared in ``tmp``: write its model card and README, then swap it in for ``assets_dir``.

    The swap is a rename, so a reader never sees half an export. Returns ``assets_dir``.
    """
    import os
    import shutil

    write_json(tmp / "model_card.json", card)
    (tmp / "README.md").write_text(readme_text)
    shutil.rmtree(assets_dir, ignore_errors=True)
    os.replace(tmp, assets_dir)
    total = sum(p.stat().st_size for p in assets_dir.rglob("*") if p.is_file())
    log(f"exported {source} -> {assets_dir} ({total / 1e6:.1f} MB)")
    return assets_dir
