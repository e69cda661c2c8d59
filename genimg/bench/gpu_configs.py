"""What the ``--random-weights`` benchmark measures: the published SD 1.5 / SD-Turbo / SDXL
architectures, the reference figures it is checked against, and how it counts.

The configs are the ``config.json`` files of the hub repositories, written out so that the
full-size models can be built without a download (:mod:`genimg.bench.gpu` builds and times
them). Counting runs on the meta device: shapes only, no weights, no compute.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


# --- published architectures (the config.json files of the hub repositories) ---------------------
# runwayml/stable-diffusion-v1-5 unet/config.json ("attention_head_dim": 8 is the head *count*,
# a historical misnomer kept by diffusers).
SD15_UNET: dict[str, Any] = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
# stabilityai/sd-turbo unet/config.json = SD 2.1 (base, 512 px) UNet: OpenCLIP-H context (1024),
# per-level head dims, linear projections in the transformer blocks.
SD21_UNET: dict[str, Any] = {
    **SD15_UNET, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
    "use_linear_projection": True, "dual_cross_attention": False, "only_cross_attention": False,
    "upcast_attention": False, "num_class_embeds": None, "resnet_time_scale_shift": "default",
}
# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
SDXL_UNET: dict[str, Any] = {
    "act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280],
    "center_input_sample": False, "class_embed_type": None, "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
    "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
    "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816, "resnet_time_scale_shift": "default", "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "use_linear_projection": True,
}
# The SD VAE (runwayml/stable-diffusion-v1-5 vae/config.json; SD 2.x and SDXL share the architecture).
SD_VAE: dict[str, Any] = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "norm_num_groups": 32, "out_channels": 3, "sample_size": 512, "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
# stabilityai/sd-turbo text_encoder/config.json (OpenCLIP ViT-H/14 text tower, penultimate layer: 23 layers).
OPENCLIP_H_TEXT: dict[str, Any] = {
    "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "gelu",
    "hidden_size": 1024, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 4096,
    "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "num_attention_heads": 16, "num_hidden_layers": 23,
    "pad_token_id": 1, "projection_dim": 512, "vocab_size": 49408,
}
# stabilityai/sd-turbo scheduler/scheduler_config.json
SD_TURBO_SCHEDULER: dict[str, Any] = {
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "trailing",
    "trained_betas": None, "use_karras_sigmas": False,
}

# name -> (UNet config, latent side at the native resolution, published parameter count)
MODELS: dict[str, tuple[dict[str, Any], int, int]] = {
    "sd15": (SD15_UNET, 64, 859_520_964),
    "sd-turbo": (SD21_UNET, 64, 865_910_724),
    "sdxl": (SDXL_UNET, 128, 2_567_463_684),
}
VAE_PUBLISHED_PARAMS = 83_653_863
# The reference figures (TFLOP = 1e12 floating-point operations, multiply-add = 2).
REFERENCE_TFLOP = {"sd15": 0.80, "sdxl": 6.76, "vae_decode_512": 2.5}
VARIANTS = ("fp16", "bf16", "bf16_channels_last", "bf16_compile")
# bf16 dense tensor-core peak (TFLOP/s, no sparsity) by device name; more specific names first.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("GH200", 989.0), ("H200", 989.0), ("H100", 989.0),
    ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0),
)
UNET_PEAK_GOAL = 0.40        # UNet at >= 40% of the bf16 peak
END_TO_END_GOAL = 1.10       # genimg <= 1.1x the fastest bare diffusers configuration
DEFAULT_COMPILE_MODE = "reduce-overhead"  # CUDA graphs; max-autotune adds minutes of autotuning per model


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in module.parameters())


def count_flops(fn: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """FLOPs of ``fn()`` by torch's FlopCounterMode (matmuls, convolutions, attention; norms and
    pointwise ops count 0, as in the usual published figures). Returns (total, per aten op)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    per_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops()), per_op


def device_peak_bf16_tflops(device_name: str) -> float | None:
    """The bf16 dense peak of a GPU by its ``torch.cuda.get_device_name``; None when unknown."""
    for key, peak in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None

