"""Style transfer: every method offline on the bundled examples, scores, errors, CLI and API."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2gray, rgb2lab
from skimage.metrics import structural_similarity

from genimg.errors import GenimgError
from genimg.style.examples import EXAMPLES_DIR

CAT = EXAMPLES_DIR / "cat.jpg"          # 451x300
COFFEE = EXAMPLES_DIR / "coffee.jpg"
SWIRLS = EXAMPLES_DIR / "swirls.jpg"
MOSAIC = EXAMPLES_DIR / "mosaic.jpg"
FAST = ["neural", "preset", "reinhard", "histogram"]


@pytest.fixture(scope="module")
def style_pool(tiny_catalog):
    """The tiny diffusers models plus genimg's own style networks (added from assets/models.toml on use)."""
    from genimg.models.pool import ModelPool

    return ModelPool(dict(tiny_catalog), budget_bytes=1 << 34)


@pytest.fixture(scope="module")
def fast_result(style_pool):
    from genimg.tasks.style import stylize

    return stylize(CAT, SWIRLS, methods=FAST, size=160, preset=7, pool=style_pool)


def arr(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def ssim_lum(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(rgb2gray(a), rgb2gray(b), data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


def test_every_method_gives_an_image_of_the_working_size(fast_result):
    assert [c.method for c in fast_result.cells] == FAST
    assert fast_result.content.size == (160, 106)   # 451x300 with the longer side 160
    for cell in fast_result.cells:
        assert cell.error is None, cell.error
        assert cell.image.size == (160, 106) and cell.image.mode == "RGB"
        pixels = arr(cell.image)
        assert pixels.dtype == np.uint8 and np.ptp(pixels) > 100          # a real picture, not a flat field
        assert cell.seconds > 0 and cell.scores is not None
    # Style scores only for methods that use the style image (a preset does not).
    assert fast_result.cell("preset").scores.gram_distance is None
    assert fast_result.cell("neural").scores.gram_distance is not None


def test_the_stylized_images_differ_from_the_content(fast_result):
    content = arr(fast_result.content)
    for cell in fast_result.cells:
        assert np.abs(arr(cell.image).astype(int) - content).mean() > 8, cell.method


def test_neural_strength_zero_is_near_the_content_and_lower_strengths_stay_closer(style_pool):
    from genimg.tasks.style import stylize

    ssims = {}
    for s in (0.0, 0.5, 1.0):
        result = stylize(CAT, SWIRLS, methods=["neural"], strength=s, size=160, scores=False, pool=style_pool)
        ssims[s] = ssim_lum(arr(result.cells[0].image), arr(result.content))
    assert ssims[0.0] > 0.7                    # the network repaints the content in its own style
    assert ssims[0.0] > ssims[0.5] > ssims[1.0]


@pytest.mark.parametrize("method", ["preset", "reinhard", "histogram", "gatys"])
def test_strength_zero_returns_the_content(style_pool, method):
    from genimg.tasks.style import stylize

    result = stylize(CAT, SWIRLS, methods=[method], strength=0.0, size=64, preset=3, iterations=3, scores=False,
                     pool=style_pool)
    np.testing.assert_array_equal(arr(result.cells[0].image), arr(result.content))


@pytest.mark.parametrize("method", FAST)
def test_preserve_colors_keeps_the_content_chroma(style_pool, method):
    from genimg.tasks.style import stylize

    kept = stylize(CAT, SWIRLS, methods=[method], preserve_colors=True, size=96, preset=7, scores=False,
                   pool=style_pool)
    free = stylize(CAT, SWIRLS, methods=[method], preserve_colors=False, size=96, preset=7, scores=False,
                   pool=style_pool)
    content_ab = rgb2lab(arr(kept.content))[..., 1:]
    kept_lab = rgb2lab(arr(kept.cells[0].image))
    free_lab = rgb2lab(arr(free.cells[0].image))
    kept_error = np.abs(kept_lab[..., 1:] - content_ab).mean()
    # Chroma: the content's, up to the clipping of colours that leave sRGB at the new lightness
    # (about 2 Lab units for the preset, which brightens the cat most) ...
    assert kept_error < 3.0, kept_error
    # ... which the same method without the option does not keep (about 20 units here).
    assert np.abs(free_lab[..., 1:] - content_ab).mean() > 5 * kept_error
    assert np.abs(kept_lab[..., 0] - free_lab[..., 0]).mean() < 3.0       # lightness: the method's


@pytest.mark.parametrize("content, style", [(CAT, SWIRLS), (COFFEE, MOSAIC)])
def test_neural_moves_the_gram_matrices_towards_the_style(style_pool, content, style):
    from genimg.tasks.style import stylize

    result = stylize(content, style, methods=["neural"], size=256, pool=style_pool)
    before = result.reference.gram_distance          # content vs style
    after = result.cells[0].scores.gram_distance     # stylized vs style
    assert after < 0.85 * before, (before, after)
    assert result.reference.ssim == 1.0 and result.reference.content_distance == 0.0
    assert result.cells[0].scores.color_distance < result.reference.color_distance


def test_scores_equal_the_reference_implementations(fast_result):
    from genimg.metrics.perceptual import effnet_distance
    from genimg.style.scores import color_distance

    content = arr(fast_result.content)
    style = arr(fast_result.style)
    cell = fast_result.cell("reinhard")
    out = arr(cell.image)
    assert cell.scores.ssim == pytest.approx(ssim_lum(out, content), abs=1e-4)
    assert cell.scores.content_distance == pytest.approx(effnet_distance(out, content), abs=1e-4)
    assert cell.scores.color_distance == pytest.approx(color_distance(out, style), abs=1e-4)
    assert color_distance(out, out) == pytest.approx(0.0, abs=1e-6)
    assert color_distance(np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)) == pytest.approx(1.0)


def test_reinhard_matches_the_style_statistics_in_lab():
    from genimg.style.color import reinhard

    rng = np.random.default_rng(0)
    content = (rng.random((40, 50, 3)) * 120 + 60).astype(np.uint8)
    style = np.asarray(Image.open(MOSAIC).convert("RGB").resize((64, 64)))
    out = rgb2lab(reinhard(content, style))
    ref = rgb2lab(style)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), ref.mean(axis=(0, 1)), atol=1.5)
    np.testing.assert_allclose(out.std(axis=(0, 1)), ref.std(axis=(0, 1)), rtol=0.1)


def test_gatys_falls_back_to_efficientnet_lite0_and_says_why(style_pool, monkeypatch, tmp_path):
    from genimg.tasks.style import stylize

    monkeypatch.setenv("GENIMG_VGG19_WEIGHTS", str(tmp_path / "absent.safetensors"))
    steps = []
    result = stylize(CAT, SWIRLS, methods=["gatys"], size=64, iterations=8, early_stop=False, pool=style_pool,
                     progress=lambda p: steps.append((p.step, p.steps)) if p.steps else None)
    cell = result.cells[0]
    assert cell.image.size == (64, 43)
    assert cell.params["network"] == "EfficientNet-Lite0 (ImageNet)" and cell.params["iterations"] == 8
    assert "VGG19 unavailable" in cell.notes and "absent.safetensors" in cell.notes
    assert steps[:8] == [(i, 8) for i in range(1, 9)]
    assert cell.scores.gram_distance < result.reference.gram_distance


def test_gatys_loss_decreases_and_the_shared_network_is_untouched():
    from genimg.metrics.features import effnet_lite0
    from genimg.style import features as F
    from genimg.style import gatys as G

    content = np.asarray(Image.open(CAT).convert("RGB").resize((64, 43)))
    style = np.asarray(Image.open(SWIRLS).convert("RGB").resize((64, 64)))
    out, info = G.stylize(F.extractor("efficientnet-lite0"), content, style, iterations=6, tolerance=0)
    assert out.shape == content.shape and info.iterations == 6
    assert info.losses[-1] < 0.8 * info.losses[0]
    shared = F.extractor("efficientnet-lite0").net
    assert shared is effnet_lite0().net                       # one network for metrics and style
    assert all(p.grad is None for p in shared.parameters())   # the shared weights were never written


def test_gatys_uses_vgg19_weights_when_present(style_pool, monkeypatch, tmp_path):
    import torch
    from safetensors.torch import save_file

    from genimg.style.features import VGG19Features
    from genimg.tasks.style import stylize

    torch.manual_seed(0)
    net = VGG19Features()
    path = tmp_path / "vgg19.safetensors"
    save_file({f"features.{k}": v for k, v in net.features.state_dict().items()}, str(path))
    monkeypatch.setenv("GENIMG_VGG19_WEIGHTS", str(path))
    result = stylize(CAT, SWIRLS, methods=["gatys"], size=48, iterations=2, scores=False, pool=style_pool)
    cell = result.cells[0]
    assert cell.error is None and cell.params["network"] == "VGG19 (ImageNet)" and cell.image.size == (48, 32)

    bad = tmp_path / "not-vgg.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(bad))
    monkeypatch.setenv("GENIMG_VGG19_WEIGHTS", str(bad))
    with pytest.raises(GenimgError, match="not a VGG19 with torchvision keys"):
        stylize(CAT, SWIRLS, methods=["gatys"], size=48, iterations=2, scores=False, pool=style_pool)


def test_sdedit_on_a_tiny_pipeline_returns_the_working_size_and_shares_weights(style_pool):
    from genimg.tasks.style import stylize

    result = stylize(CAT, style_prompt="a cat in the style of a mosaic", methods=["sdedit"], size=60,
                     strength=0.5, steps=4, seed=3, model="tiny-a", pool=style_pool)
    cell = result.cells[0]
    assert cell.error is None and cell.image.size == (60, 40) == result.content.size
    assert cell.params["denoising_steps"] == 2 and cell.params["model"] == "tiny-a"
    assert cell.scores.gram_distance is None and cell.scores.ssim < 1.0   # no style image: no style scores
    handle = style_pool.loaded()[[h.spec.id for h in style_pool.loaded()].index("tiny-a")]
    assert handle.variants["img2img"].unet is handle.model.unet             # from_pipe: no second copy
    again = stylize(CAT, style_prompt="a cat in the style of a mosaic", methods=["sdedit"], size=60,
                    strength=0.5, steps=4, seed=3, model="tiny-a", pool=style_pool)
    np.testing.assert_array_equal(arr(again.cells[0].image), arr(cell.image))  # the seed reproduces it


def test_sdedit_without_a_model_here_says_so(style_pool):
    from genimg.tasks.style import stylize

    with pytest.raises(GenimgError, match="SDEdit needs a text-to-image diffusion model.*not in the Hugging Face cache"):
        stylize(CAT, style_prompt="an oil painting", methods=["sdedit"], size=64, model="missing-hub",
                pool=style_pool)
    # With other methods, the unavailable one becomes an error cell and the rest still run.
    result = stylize(CAT, SWIRLS, style_prompt="an oil painting", methods=["reinhard", "sdedit"], size=64,
                     model="missing-hub", scores=False, pool=style_pool)
    assert result.cells[0].image is not None and "huggingface-cli download" in result.cells[1].error


def _truncated_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()[:60]


@pytest.mark.parametrize("kwargs, message", [
    (dict(content=b"this is not an image"), r"content image .* is a text file, not an image: use PNG"),
    (dict(style=_truncated_png()), r"style image .* is damaged or truncated"),
    (dict(content=None), r"no content image given"),
    (dict(style=None, methods=["neural", "reinhard"]), r"neural, reinhard need a style image"),
    (dict(methods=["cubism"]), r"unknown style-transfer method 'cubism'"),
    (dict(methods=[]), r"no style-transfer method chosen"),
    (dict(methods=["reinhard", "reinhard"]), r"chosen twice"),
    (dict(strength=1.5), r"strength must be between 0 and 1"),
    (dict(strength=float("nan")), r"strength must be a finite number"),
    (dict(size=100000), r"size must be between 32 and"),
    (dict(methods=["preset"]), r"choose a preset 0-25"),
    (dict(methods=["preset"], preset=26), r"preset must be between 0 and 25"),
    (dict(methods=["sdedit"]), r"style prompt \(for sdedit\) is empty"),
    (dict(content=np.zeros((4, 400, 3), np.uint8)), r"content image is 400x4; .* at least 8 pixels"),
    (dict(content=np.zeros((20, 400, 3), np.uint8)), r"shorter side would be 26 px"),
])
def test_bad_input_is_a_clear_error(style_pool, kwargs, message):
    from genimg.tasks.style import stylize

    args = dict(content=CAT, style=SWIRLS, methods=["reinhard"], size=512)
    args.update(kwargs)
    with pytest.raises(GenimgError, match=message):
        stylize(args.pop("content"), args.pop("style"), pool=style_pool, **args)


def test_transparency_comes_back_on_every_result(style_pool):
    from genimg.tasks.style import stylize

    rgba = Image.open(CAT).convert("RGBA")
    alpha = np.zeros((rgba.height, rgba.width), np.uint8)
    alpha[:, : rgba.width // 2] = 255
    rgba.putalpha(Image.fromarray(alpha))
    result = stylize(rgba, SWIRLS, methods=["reinhard", "neural"], size=90, scores=False, pool=style_pool)
    for cell in result.cells:
        assert cell.image.mode == "RGBA" and cell.image.size == (90, 60)
        a = np.asarray(cell.image.getchannel("A"))
        assert a[:, :40].min() > 250 and a[:, 50:].max() < 5


def test_the_onnx_networks_load_once_into_the_pool(style_pool):
    from genimg.tasks.style import stylize

    stylize(CAT, SWIRLS, methods=["neural"], size=64, scores=False, pool=style_pool)
    second = stylize(CAT, SWIRLS, methods=["neural", "preset"], size=64, preset=1, scores=False, pool=style_pool)
    assert [c.load_seconds for c in second.cells] == [0.0, 0.0]
    handles = [h for h in style_pool.loaded() if h.spec.id == "magenta-style"]
    assert len(handles) == 1 and handles[0].uses >= 3
    assert set(handles[0].model.sessions) == {"predict", "transform", "multistyle"}


def test_onnx_backend_explains_a_missing_package():
    from genimg.models import onnx_backend
    from genimg.models.catalog import ModelSpec

    spec = ModelSpec(id="x", name="x", backend="onnx", source="pkg:genimg_no_such_pkg/models", tasks=("style",),
                     options={"package": "no-such-pkg", "networks": {"a": "a.onnx"}})
    ok, why = onnx_backend.availability(spec)
    assert not ok and "not installed" in why and "pip install no-such-pkg" in why


def _cli(argv, capsys, monkeypatch, pool):
    """``python -m genimg`` in-process over ``pool``, with the style command registered."""
    import genimg.cli as cli
    from genimg.models import pool as pool_module

    monkeypatch.setattr(pool_module, "_default_pool", pool)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_pngs_with_parameters_and_prints_json(style_pool, capsys, monkeypatch, tmp_path):
    from genimg.outputs import read_record

    out = tmp_path / "styled.png"
    code, stdout, _ = _cli(["style", "--method", "reinhard", "--content", str(CAT), "--style", str(SWIRLS),
                            "--out", str(out), "--size", "96", "--strength", "0.5", "--json"], capsys, monkeypatch,
                           style_pool)
    assert code == 0
    payload = json.loads(stdout)
    assert payload["cells"][0]["output"] == str(out) and payload["params"]["strength"] == 0.5
    with Image.open(out) as image:
        assert image.size == (96, 64) and "style transfer" in image.info["parameters"]
    record = read_record(out)
    assert record["method"] == "reinhard" and record["scores"]["ssim"] == payload["cells"][0]["scores"]["ssim"]


def test_cli_user_errors_are_one_line(style_pool, capsys, monkeypatch, tmp_path):
    code, stdout, stderr = _cli(["style", "--method", "neural", "--content", str(tmp_path / "nope.jpg"),
                                 "--style", str(SWIRLS), "--out", str(tmp_path)], capsys, monkeypatch, style_pool)
    assert code == 2 and stdout == ""
    assert stderr.startswith("error: content image") and "does not exist" in stderr and stderr.count("\n") == 1


def test_the_tab_serves_the_style_api(style_pool):
    import gradio as gr

    from genimg.config import settings
    from genimg.ui import style_tab

    with gr.Blocks() as demo:
        parts = style_tab.build(style_pool, settings())
    names = [getattr(fn, "api_name", None) for fn in demo.fns.values()]
    assert "style" in names and parts["gallery"] is not None


def test_the_tab_handler_returns_captions_table_and_zip(fast_result):
    import zipfile

    from genimg.ui.style_tab import bundle, caption, table_rows

    rows = table_rows(fast_result)
    assert rows[0][0] == "content (reference)" and rows[0][1] == 1.0
    assert [r[0] for r in rows[1:]] == FAST
    assert caption(fast_result, fast_result.cells[0]).startswith("neural · SSIM ")
    with zipfile.ZipFile(bundle(fast_result)) as zf:
        names = set(zf.namelist())
    assert {f"style-{m}.png" for m in FAST} | {"content.png", "style.png", "scores.csv", "style.json"} <= names
