"""The GPU fast path (loader options) and the --random-weights bench, checked on the CPU:
full-size architectures on the meta device (parameters, FLOPs), the fast path on tiny pipelines."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from genimg.bench import gpu as gpu_bench
from genimg.errors import GenimgError
from genimg.models import diffusers_backend as db
from genimg.models.catalog import ModelSpec
from genimg.models.device import Placement
from genimg.models.pool import ModelPool
from genimg.tasks.generate import GenerateRequest, generate

CPU = Placement(torch.device("cpu"), torch.float32)
CUDA = Placement(torch.device("cuda"), torch.float16)  # only resolved, never placed
FAST_ENV = ("GENIMG_COMPILE", "GENIMG_COMPILE_CPU", "GENIMG_CHANNELS_LAST", "GENIMG_VAE_TILING")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in FAST_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def counts():
    return gpu_bench.flops_report()


# --- full-size architectures (meta device) -------------------------------------------------------
@pytest.mark.parametrize("name", ["sd15", "sd-turbo", "sdxl", "vae"])
def test_parameter_counts_match_the_published_models(counts, name):
    row = counts[name]
    assert abs(row["parameters"] - row["published_parameters"]) <= 0.005 * row["published_parameters"]
    assert row["published_parameters"] == {"sd15": 859_520_964, "sd-turbo": 865_910_724,
                                           "sdxl": 2_567_463_684, "vae": 83_653_863}[name]


def test_flops_match_the_reference_figures(counts):
    # FlopCounterMode counts convs/matmuls/attention only; the references count the same ops.
    assert counts["sd15"]["unet_tflop_per_step_batch1"] == pytest.approx(0.80, rel=0.15)
    assert counts["sdxl"]["unet_tflop_per_step_batch1"] == pytest.approx(6.76, rel=0.15)
    assert counts["vae"]["decode_tflop_512"] == pytest.approx(2.5, rel=0.15)
    # SD-Turbo's UNet (SD 2.1) costs about what SD 1.5's does at 512².
    assert counts["sd-turbo"]["unet_tflop_per_step_batch1"] == pytest.approx(0.80, rel=0.15)
    assert counts["text_encoder_openclip_h"]["parameters"] == 340_387_840


def test_flops_scale_with_batch_and_pixels():
    unet = gpu_bench.build_unet("sd15", "meta")
    one = gpu_bench.unet_flops("sd15", batch=1, side=16, unet=unet)
    assert gpu_bench.unet_flops("sd15", batch=2, side=16, unet=unet) == 2 * one
    assert gpu_bench.unet_flops("sd15", batch=1, side=32, unet=unet) > 3.5 * one  # ~4x pixels


@pytest.mark.parametrize("device_name, peak", [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L4", 121.0), ("NVIDIA L40S", 362.0), ("Tesla T4", None)])
def test_bf16_peak_by_device_name(device_name, peak):
    assert gpu_bench.device_peak_bf16_tflops(device_name) == peak


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_timing_without_cuda_is_refused_with_a_clear_error(capsys):
    with pytest.raises(GenimgError, match=r"--random-weights needs a CUDA GPU.*--flops-only"):
        gpu_bench.run_random_weights(models=("sd15",))
    from genimg.cli import main

    assert main(["bench", "--random-weights", "--models", "sd15"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --random-weights needs a CUDA GPU")


def test_flops_only_works_on_the_cpu_through_the_cli(capsys):
    from genimg.cli import main

    assert main(["bench", "--flops-only", "--models", "sd-turbo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] is None and set(report["flops"]) >= {"sd-turbo", "vae"}
    assert report["flops"]["sd-turbo"]["parameters"] == 865_910_724


def test_bad_arguments_are_user_errors():
    with pytest.raises(GenimgError, match="unknown random-weights model"):
        gpu_bench.run_random_weights(models=("sd3",), flops_only=True)
    with pytest.raises(GenimgError, match="unknown variant"):
        gpu_bench.run_random_weights(variants=("int8",), flops_only=True)


# --- the timing code, run on the CPU with tiny configs (a smoke test of what runs on CUDA) -------
TINY_UNET = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=[16, 32],
                 down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                 up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], cross_attention_dim=32,
                 attention_head_dim=4, norm_num_groups=8)
# Factor 8 like the real VAE, so the end-to-end 512² call has 64² latents.
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[8, 8, 8, 8],
                down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                layers_per_block=1, norm_num_groups=8, sample_size=64)
TINY_TEXT = dict(gpu_bench.OPENCLIP_H_TEXT, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                 num_attention_heads=4, vocab_size=128)


def test_timing_code_runs_end_to_end_on_cpu_with_tiny_configs(monkeypatch, tmp_path):
    monkeypatch.setattr(gpu_bench, "DEVICE", "cpu")
    monkeypatch.setattr(gpu_bench, "WARMUP", 0)  # smoke, not a measurement
    monkeypatch.setattr(gpu_bench, "E2E_SIDE", 64)
    monkeypatch.setattr(gpu_bench, "MODELS", {"sd-turbo": (TINY_UNET, 8, 0)})
    monkeypatch.setattr(gpu_bench, "SD_VAE", TINY_VAE)
    monkeypatch.setattr(gpu_bench, "OPENCLIP_H_TEXT", TINY_TEXT)
    # inductor's CPU compile takes minutes; dynamo's eager backend still traces the same graph.
    monkeypatch.setattr(gpu_bench, "_compile", lambda module, mode: torch.compile(module, backend="eager"))
    # One UNet variant keeps this < 25 s on two shared cores (CPU fp16 kernels are slow; fp16 and
    # compiling are covered by the VAE's and the end-to-end bare pipelines' variants).
    unet = gpu_bench.bench_unet("sd-turbo", ("bf16_channels_last",), 1, "default", peak=100.0)
    assert set(unet["variants"]) == {"bf16_channels_last"}
    for row in unet["variants"].values():
        assert "error" not in row["batch1"], row
        assert row["batch2"]["tflop"] == pytest.approx(2 * row["batch1"]["tflop"])
        assert row["batch1"]["pct_of_bf16_peak"] == pytest.approx(row["batch1"]["achieved_tflops"])
    vae = gpu_bench.bench_vae(("bf16_compile",), 1, "default", peak=None)
    assert all("error" not in r["batch1"] for r in vae["variants"].values())
    e2e = gpu_bench.bench_end_to_end(1, "default", tmp_path)
    assert not e2e["errors"], e2e["errors"]
    assert set(e2e["timings"]) >= {"bare_fp16", "bare_fp16_channels_last_compile", "genimg_default", "genimg_compile"}
    assert e2e["fastest_bare"].startswith("bare_") and e2e["genimg_default_over_fastest_bare"] > 0
    # On the CPU the loader keeps compile off (and says why).
    assert e2e["genimg_fast_path"]["genimg_compile"]["compile"] is None
    assert any("GENIMG_COMPILE_CPU" in n for n in e2e["genimg_fast_path"]["genimg_compile"]["notes"])
    report = {"torch": torch.__version__, "device": "cpu", "flops": {}, "unet": {"sd-turbo": unet},
              "vae_decode": vae, "end_to_end": e2e}
    assert "genimg_default_over_fastest_bare" in gpu_bench.format_table(report)


# --- the loader's fast path, on tiny pipelines -----------------------------------------------------
def spec_for(path, **options) -> ModelSpec:
    return ModelSpec(id="tiny", name="tiny", backend="diffusers", source=str(path), tasks=("text-to-image",),
                     dtype="fp32", defaults={"width": 32, "height": 32, "steps": 2, "guidance": 5.0},
                     options=options)


def run(spec, **kw):
    pool = ModelPool({"tiny": spec}, budget_bytes=1 << 34)
    request = GenerateRequest(prompt="a red circle", model="tiny", seed=3, **kw)
    result = generate(request, pool)
    with pool.acquire("tiny") as lease:
        pipe = lease.model
    return np.asarray(result.images[0], dtype=np.int16), pipe


def test_compile_is_off_on_the_cpu_unless_forced(monkeypatch):
    spec = spec_for("unused")
    assert db.fast_path_options(spec, CPU).compile_mode is None
    assert db.fast_path_options(spec, CUDA).compile_mode is None  # off by default everywhere
    monkeypatch.setenv("GENIMG_COMPILE", "max-autotune")
    cpu = db.fast_path_options(spec, CPU)
    assert cpu.compile_mode is None and "GENIMG_COMPILE_CPU" in cpu.notes[0]
    assert db.fast_path_options(spec, CUDA).compile_mode == "max-autotune"
    monkeypatch.setenv("GENIMG_COMPILE_CPU", "1")
    assert db.fast_path_options(spec, CPU).compile_mode == "max-autotune"
    monkeypatch.setenv("GENIMG_COMPILE", "turbo")
    with pytest.raises(GenimgError, match="unknown compile mode 'turbo'"):
        db.fast_path_options(spec, CUDA)


def test_option_precedence_and_defaults(monkeypatch):
    spec = spec_for("unused", compile="reduce-overhead", channels_last="off", vae_tiling=4096)
    fast = db.fast_path_options(spec, CUDA)
    assert (fast.compile_mode, fast.channels_last, fast.vae_tiling_pixels) == ("reduce-overhead", False, 4096)
    plain = db.fast_path_options(spec_for("unused"), CUDA)
    assert plain.channels_last is True and plain.vae_tiling_pixels == db.DEFAULT_VAE_TILING_PIXELS
    assert db.fast_path_options(spec_for("unused"), CPU).channels_last is False
    monkeypatch.setenv("GENIMG_CHANNELS_LAST", "on")
    monkeypatch.setenv("GENIMG_VAE_TILING", "off")
    fast = db.fast_path_options(spec, CUDA)  # the environment wins over the catalog entry
    assert fast.channels_last is True and fast.vae_tiling_pixels is None
    monkeypatch.setenv("GENIMG_VAE_TILING", "big")
    with pytest.raises(GenimgError, match="GENIMG_VAE_TILING"):
        db.fast_path_options(spec, CUDA)


def test_channels_last_forced_gives_nhwc_weights_and_the_same_image(monkeypatch, tiny_dirs):
    spec = spec_for(tiny_dirs["tiny-a"])
    eager, plain = run(spec)
    assert not plain.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    monkeypatch.setenv("GENIMG_CHANNELS_LAST", "1")
    fast, pipe = run(spec)
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert pipe.genimg_fast_path["channels_last"] == ["unet", "vae"]
    assert pipe.genimg_fast_path["attention"]["unet"] == {"AttnProcessor2_0": len(pipe.unet.attn_processors)}
    assert np.abs(fast - eager).max() <= 2


def test_classic_attention_is_replaced_by_sdpa(tiny_dirs):
    from diffusers import StableDiffusionPipeline
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    pipe = StableDiffusionPipeline.from_pretrained(tiny_dirs["tiny-a"])
    pipe.unet.set_attn_processor(AttnProcessor())
    counts = db.ensure_sdpa(pipe)
    assert all(type(p) is AttnProcessor2_0 for p in pipe.unet.attn_processors.values())
    assert set(counts["unet"]) == {"AttnProcessor2_0"} and set(counts["vae"]) == {"AttnProcessor2_0"}


def test_vae_tiles_only_above_the_pixel_threshold(monkeypatch, tiny_dirs):
    spec = spec_for(tiny_dirs["tiny-a"])
    eager, _ = run(spec)
    monkeypatch.setenv("GENIMG_VAE_TILING", str(32 * 32))
    small, pipe = run(spec)
    assert pipe.genimg_fast_path["vae_tiling_pixels"] == 1024
    assert not pipe.vae.use_tiling and np.array_equal(small, eager)  # at the threshold: untouched
    pool = ModelPool({"tiny": spec}, budget_bytes=1 << 34)
    big = generate(GenerateRequest(prompt="a red circle", model="tiny", seed=3, width=72, height=40, batch=2), pool)
    assert [im.size for im in big.images] == [(72, 40)] * 2
    with pool.acquire("tiny") as lease:
        assert lease.model.vae.use_tiling and lease.model.vae.use_slicing
    generate(GenerateRequest(prompt="a red circle", model="tiny", seed=3), pool)
    with pool.acquire("tiny") as lease:
        assert not lease.model.vae.use_tiling  # the next small request decodes whole again


def test_forced_compile_warms_up_at_load_and_matches_eager(monkeypatch, tiny_dirs):
    spec = spec_for(tiny_dirs["tiny-a"])
    eager, _ = run(spec)
    # Dynamo's "eager" backend: same tracing and wiring as inductor, seconds instead of minutes on 2 cores.
    monkeypatch.setattr(db, "_COMPILE_BACKEND", "eager")
    monkeypatch.setenv("GENIMG_COMPILE", "default")
    monkeypatch.setenv("GENIMG_COMPILE_CPU", "1")
    compiled, pipe = run(spec)
    report = pipe.genimg_fast_path
    assert report["compile"] == "default" and report["warmup_s"] > 0
    assert pipe.unet._compiled_call_impl is not None
    assert np.abs(compiled - eager).max() <= 2


def test_tiny_preview_vae_is_swapped_in_when_present(tmp_path, tiny_dirs):
    from diffusers import AutoencoderKL, AutoencoderTiny

    taesd = tmp_path / "taesd"
    AutoencoderTiny(encoder_block_out_channels=(8, 8, 8), decoder_block_out_channels=(8, 8, 8),
                    num_encoder_blocks=(1, 1, 1), num_decoder_blocks=(1, 1, 1)).save_pretrained(taesd)
    image, pipe = run(spec_for(tiny_dirs["tiny-a"], tiny_vae=str(taesd)), width=48, height=32)
    assert isinstance(pipe.vae, AutoencoderTiny) and image.shape == (32, 48, 3)
    assert pipe.genimg_fast_path["tiny_vae"].startswith("AutoencoderTiny")
    _, kept = run(replace(spec_for(tiny_dirs["tiny-a"], tiny_vae="genimg-tests/no-such-taesd")))
    assert isinstance(kept.vae, AutoencoderKL) and kept.genimg_fast_path["tiny_vae"].startswith("absent")


def test_a_compiler_failure_at_warm_up_falls_back_to_eager(monkeypatch, tiny_dirs):
    def broken_backend(_graph, _inputs):
        raise RuntimeError("no triton here")

    monkeypatch.setattr(db, "_COMPILE_BACKEND", broken_backend)
    monkeypatch.setenv("GENIMG_COMPILE", "default")
    monkeypatch.setenv("GENIMG_COMPILE_CPU", "1")
    image, pipe = run(spec_for(tiny_dirs["tiny-a"]))
    assert image.shape == (32, 32, 3) and pipe.genimg_fast_path["compile"] is None
    assert "failed at warm-up, running eager" in pipe.genimg_fast_path["notes"][-1]


def test_bf16_on_cuda_through_genimg_dtype(monkeypatch):
    from genimg.models.device import default_placement

    monkeypatch.delenv("GENIMG_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # resolution only: nothing is allocated
    monkeypatch.delenv("GENIMG_DTYPE", raising=False)
    assert default_placement().dtype == torch.float16
    monkeypatch.setenv("GENIMG_DTYPE", "bf16")
    assert default_placement() == Placement(torch.device("cuda"), torch.bfloat16)
