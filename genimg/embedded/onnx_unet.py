"""The embedded UNet on ONNX Runtime: the fastest CPU path we measured for it.

At load the UNet is exported to ONNX in memory (batch and token count dynamic, the timestep a
float so every scheduler's timesteps pass unchanged) and run by ONNX Runtime's CPU provider.
On this 2-core CPU that ran the 6.6M-parameter UNet about 2x faster than eager PyTorch, with
outputs within 3e-6 of it (``python -m genimg bench`` section "embedded" measures both in one
run). The exporter is torch.onnx's TorchScript one (``dynamo=False``): the dynamo exporter needs
onnxscript, which nothing else here uses. Export costs about a second of the cold load;
the ONNX copy of the weights (26 MB fp32) sits beside the PyTorch module, which stays the
source of truth (training, CUDA, other dtypes).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import torch

_INPUTS = ("sample", "timestep", "encoder_hidden_states", "encoder_attention_mask", "class_labels")


class _UNetForExport(torch.nn.Module):
    """The UNet call the embedded pipeline makes, with positional tensors only (what ONNX sees)."""

    def __init__(self, unet: torch.nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, encoder_attention_mask, class_labels):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         encoder_attention_mask=encoder_attention_mask, class_labels=class_labels).sample


class _Output:
    """Stands in for diffusers' UNet2DConditionOutput: the pipeline reads ``.sample``."""

    def __init__(self, sample: torch.Tensor):
        self.sample = sample


class OnnxUNet:
    """Callable like the embedded pipeline's UNet (same arguments, ``.sample`` out), run by ONNX Runtime.

    Built from a float32 CPU ``UNet2DConditionModel`` whose ``class_embed_type`` is
    "projection" (the embedded models' pooled-text conditioning). ``threads``: ONNX Runtime
    intra-op threads (the process's torch thread count by default). Raises whatever the
    exporter or ONNX Runtime raise if the model cannot be exported (callers fall back to torch).
    """

    def __init__(self, unet: torch.nn.Module, threads: int | None = None):
        import onnxruntime as ort

        config = unet.config
        batch, tokens = 2, 5
        example = (
            torch.zeros(batch, config.in_channels, config.sample_size, config.sample_size),
            torch.full((batch,), 500.0),
            torch.zeros(batch, tokens, config.cross_attention_dim),
            torch.ones(batch, tokens, dtype=torch.int64),
            torch.zeros(batch, config.projection_class_embeddings_input_dim),
        )
        dynamic = {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                   "encoder_hidden_states": {0: "batch", 1: "tokens"},
                   "encoder_attention_mask": {0: "batch", 1: "tokens"}, "class_labels": {0: "batch"},
                   "out": {0: "batch", 2: "height", 3: "width"}}
        buffer = io.BytesIO()
        with warnings.catch_warnings():  # tracer and deprecation chatter, not user-facing
            warnings.simplefilter("ignore")
            torch.onnx.export(_UNetForExport(unet).eval(), example, buffer, dynamo=False, opset_version=17,
                              input_names=list(_INPUTS), output_names=["out"], dynamic_axes=dynamic)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        self.config = config

    def __call__(self, sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor,
                 encoder_attention_mask: torch.Tensor, class_labels: torch.Tensor) -> _Output:
        batch = sample.shape[0]
        t = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1).expand(batch)
        feed = {
            "sample": sample.detach().float().contiguous().numpy(),
            "timestep": np.ascontiguousarray(t.numpy()),
            "encoder_hidden_states": encoder_hidden_states.detach().float().contiguous().numpy(),
            "encoder_attention_mask": encoder_attention_mask.detach().to(torch.int64).contiguous().numpy(),
            "class_labels": class_labels.detach().float().contiguous().numpy(),
        }
        (out,) = self.session.run(["out"], feed)
        return _Output(torch.from_numpy(out))


__all__ = ["OnnxUNet"]
