"""Evaluate GAN checkpoints or exported GANs on fresh seeds, through the shipped path (fp16 export, the loader).

Checkpoints are chosen on the loop's evaluation seeds (0, 1), which flatters the chosen one; this scores them
again on seeds nobody selected on (default 2-5). Usage (from the repository root):

    python scripts/evaluate_one_step.py runs/gan-ac3/ckpt-0000500 assets/embedded/gan [--seeds 2,3,4,5]

Prints one JSON line per checkpoint: single colour+bg (+shape), the shape check, every check, diversity and
the near-duplicate rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import torch

    from genimg.embedded.gan import load_embedded_gan
    from genimg.training.evaluation import collapse_check, evaluate_pipeline
    from genimg.training.onestep import COLLAPSE_THRESHOLD, export

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="checkpoint folders (ckpt-*, best) or exported GAN folders")
    parser.add_argument("--seeds", default="2,3,4,5")
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    torch.set_num_threads(1)
    for source in map(Path, args.folders):
        folder = source
        if not (folder / "model_card.json").exists():  # a checkpoint: export it the way it would ship
            folder = export(folder, "gan", Path(tempfile.mkdtemp()) / "gan", log=lambda *_: None)
        pipe = load_embedded_gan(folder)
        m = evaluate_pipeline(pipe, seeds=seeds, steps=1, guidance=0.0)
        m.update(collapse_check(pipe, threshold=COLLAPSE_THRESHOLD, steps=1, guidance=0.0))
        row = {k: m[k] for k in ("single_colour_bg", "single_colour_bg_shape", "all", "diversity", "near_duplicates")}
        print(json.dumps({"folder": str(source), "seeds": list(seeds), **row, "shape_check": m["checks"]["shape"]}),
              flush=True)


if __name__ == "__main__":
    main()
