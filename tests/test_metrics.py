"""genimg.metrics against reference implementations, and the metrics task, CLI command and tab."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import skimage.data
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.metrics import (brisque, colourfulness, diversity, effnet_distance, entropy, fd_result, frechet_distance,
                            kid, kid_result, lpips, ms_ssim, mse, niqe, psnr, sharpness, ssim)

RNG = np.random.default_rng(1234)


def _noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image.astype(np.float64) + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    spatial = (sigma, sigma, 0) if image.ndim == 3 else sigma
    return np.clip(np.rint(gaussian_filter(image.astype(np.float64), spatial)), 0, 255).astype(np.uint8)


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Real-ish and random pairs: RGB and gray, uint8 and float, odd sizes."""
    astronaut = skimage.data.astronaut()[:200, 100:301]
    camera = skimage.data.camera()[100:293, 50:300]
    coffee = skimage.data.coffee()[:180, :240]
    text = skimage.data.text()[:, :200]
    field = gaussian_filter(RNG.random((97, 131, 3)), (2, 2, 0))
    field = (field - field.min()) / np.ptp(field)
    return [
        ("astronaut+noise", astronaut, _noisy(astronaut, 10)),
        ("astronaut+blur", astronaut, _blur(astronaut, 1.5)),
        ("camera gray+noise", camera, _noisy(camera, 20, 1)),
        ("coffee jpeg-ish", coffee, _blur(_noisy(coffee, 4, 2), 0.7)),
        ("text gray+blur", text, _blur(text, 1.0)),
        ("random uint8", RNG.integers(0, 256, (64, 80, 3), dtype=np.uint8),
         RNG.integers(0, 256, (64, 80, 3), dtype=np.uint8)),
        ("smooth float64", field, np.clip(field + RNG.normal(0, 0.05, field.shape), 0, 1)),
        ("random float32 gray", RNG.random((70, 90)).astype(np.float32), RNG.random((70, 90)).astype(np.float32)),
    ]


CASES = _cases()


def _sk_ssim(a, b, data_range):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 channel_axis=-1 if a.ndim == 3 else None, data_range=data_range)


@pytest.mark.parametrize("name,a,b", CASES, ids=[c[0] for c in CASES])
def test_psnr_ssim_equal_scikit_image(name, a, b):
    data_range = 255 if a.dtype == np.uint8 else 1.0
    assert abs(psnr(a, b) - peak_signal_noise_ratio(a, b, data_range=data_range)) <= 1e-6
    reference = _sk_ssim(a, b, data_range)
    assert abs(ssim(a, b) - reference) <= 1e-6
    assert abs(ssim(a, b, precise=True) - reference) <= 1e-6
    assert abs(mse(a, b) - np.mean((a.astype(np.float64) - b) ** 2)) <= 1e-9


def test_identical_images_and_batches():
    a = skimage.data.astronaut()[:128, :128]
    assert psnr(a, a) == float("inf")
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert mse(a, a) == 0.0
    images = np.stack([_noisy(a, s, s) for s in (2, 8, 30)])
    batch = ssim(images, a)  # one reference broadcast over a batch
    assert batch.shape == (3,)
    assert np.allclose(batch, [_sk_ssim(im, a, 255) for im in images], atol=1e-6)
    assert batch[0] > batch[1] > batch[2]
    assert np.allclose(psnr(list(images), [a, a, a]), [peak_signal_noise_ratio(a, im) for im in images], atol=1e-9)
    # torch tensors are channel-first
    import torch

    t = torch.from_numpy(images).permute(0, 3, 1, 2)
    assert np.allclose(ssim(t, torch.from_numpy(a).permute(2, 0, 1)), batch, atol=1e-9)


def _ms_ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Wang et al. 2003 in float64, straight from the paper and msssim.m: per channel, 5 scales,
    Gaussian 11x11 σ=1.5 valid windows, 2x2 mean downsampling (odd edge averaged with itself)."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def valid(img):
        return gaussian_filter(img, 1.5, truncate=3.5)[5:-5, 5:-5]

    values = []
    for ch in range(x.shape[2]):
        a, b = x[:, :, ch].astype(np.float64), y[:, :, ch].astype(np.float64)
        result = 1.0
        for scale, w in enumerate(weights):
            mu_a, mu_b = valid(a), valid(b)
            va = valid(a * a) - mu_a ** 2
            vb = valid(b * b) - mu_b ** 2
            cov = valid(a * b) - mu_a * mu_b
            cs = (2 * cov + c2) / (va + vb + c2)
            if scale < len(weights) - 1:
                result *= max(cs.mean(), 0) ** w
                a = np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2)), mode="edge")
                b = np.pad(b, ((0, b.shape[0] % 2), (0, b.shape[1] % 2)), mode="edge")
                a = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4
                b = (b[0::2, 0::2] + b[1::2, 0::2] + b[0::2, 1::2] + b[1::2, 1::2]) / 4
            else:
                lum = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
                result *= max((lum * cs).mean(), 0) ** w
        values.append(result)
    return float(np.mean(values))


def test_ms_ssim_equals_float64_reimplementation():
    worst = 0.0
    base = skimage.data.astronaut()
    for a, b in [(base[:193, :207], _noisy(base[:193, :207], 12)),
                 (base[100:300, 50:250], _blur(base[100:300, 50:250], 2.0)),
                 (skimage.data.camera()[:181, :200, None], _noisy(skimage.data.camera()[:181, :200, None], 25, 3))]:
        reference = _ms_ssim_reference(a, b, 255)
        worst = max(worst, abs(ms_ssim(a, b) - reference), abs(ms_ssim(a, b, precise=True) - reference))
    assert worst <= 1e-6
    assert ms_ssim(base[:200, :200], base[:200, :200]) == pytest.approx(1.0, abs=1e-6)


def test_full_reference_errors_are_clear():
    a = skimage.data.astronaut()[:64, :64]
    with pytest.raises(GenimgError, match=r"64x64 with 3 channels but reference is 60x64.*resize_to_match"):
        psnr(a, a[:, :60])
    with pytest.raises(GenimgError, match="channels"):
        ssim(a, a[:, :, 0])
    with pytest.raises(GenimgError, match="empty"):
        ssim([], [])
    with pytest.raises(GenimgError, match="at least 161x161"):
        ms_ssim(a, a)
    with pytest.raises(GenimgError, match="0..1"):
        ssim(a.astype(np.float32), a.astype(np.float32))  # 0..255 floats need data_range
    assert ssim(a.astype(np.float32), a.astype(np.float32), data_range=255) == pytest.approx(1.0, abs=1e-6)
    # explicit resize: same image at another size scores close to itself, and reports a mismatch no more
    small = np.asarray(Image.fromarray(a).resize((48, 48), Image.Resampling.BICUBIC))
    assert psnr(small, a, resize_to_match=True) > 20
    assert ssim(a[:, :, :1], a, resize_to_match=True) > 0.5


# -- set level -------------------------------------------------------------------------------------

def _fd_reference(fa: np.ndarray, fb: np.ndarray) -> float:
    from scipy.linalg import sqrtm

    mu_a, mu_b = fa.mean(0), fb.mean(0)
    sa, sb = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    root = sqrtm(sa @ sb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.trace(root))


def test_frechet_distance():
    fa = RNG.normal(size=(400, 24))
    fb = RNG.normal(0.3, 1.2, size=(300, 24)) @ RNG.normal(size=(24, 24)) * 0.3
    assert abs(frechet_distance(fa, fb) - _fd_reference(fa, fb)) <= 1e-6 * _fd_reference(fa, fb)
    scale = np.trace(np.cov(fa, rowvar=False))
    assert frechet_distance(fa, fa) <= 1e-6 * scale
    # fewer images than dimensions: the nuclear-norm path; compare with the reference on the same data
    small_a, small_b = RNG.normal(size=(30, 64)), RNG.normal(0.5, 1.0, size=(40, 64))
    assert frechet_distance(small_a, small_b) == pytest.approx(_fd_reference(small_a, small_b), rel=1e-6)
    assert frechet_distance(small_a, small_a) <= 1e-6 * np.trace(np.cov(small_a, rowvar=False))
    with pytest.raises(GenimgError, match="at least 2"):
        frechet_distance(fa[:1], fb)
    with pytest.raises(GenimgError, match="different sizes"):
        frechet_distance(fa, fb[:, :10])


def test_fd_result_ci_and_small_n_warning():
    fa, fb = RNG.normal(size=(60, 8)), RNG.normal(0.4, 1, size=(60, 8))
    result = fd_result(fa, fb, bootstrap=30)
    assert result.ci_low <= result.value * 1.5 and result.ci_high >= result.value * 0.5
    assert result.warning is None  # 60 >= 2 * 8
    result = fd_result(fa[:10], fb[:10], bootstrap=0, name="FD-EffNetLite0")
    assert "FD-EffNetLite0 on 10 images" in result.warning and result.ci_low is None


def test_kid_same_and_different_distributions():
    same_a, same_b = RNG.normal(size=(300, 32)), RNG.normal(size=(300, 32))
    other = RNG.normal(0.6, 1.0, size=(300, 32))
    same, _ = kid(same_a, same_b)
    different, _ = kid(same_a, other)
    assert abs(same) < 0.01
    assert different > 0.1 and different > 20 * abs(same)
    result = kid_result(same_a, other, bootstrap=40, subset_size=100, subsets=20)
    assert result.ci_low > 0 and result.warning is None
    assert "very noisy" in kid_result(same_a[:20], other[:20], bootstrap=5).warning


# -- feature extractor and perceptual distances -------------------------------------------------------

@pytest.fixture(scope="module")
def effnet():
    from genimg.metrics.features import effnet_lite0

    return effnet_lite0()


def test_effnet_lite0_is_the_imagenet_network(effnet):
    logits = effnet.logits([skimage.data.chelsea(), skimage.data.coffee()])
    assert 281 <= int(logits[0].argmax()) <= 285  # a cat (tabby/tiger/Persian/Siamese/Egyptian)
    assert int(logits[1].argmax()) in (967, 968, 504)  # espresso, cup, coffee mug
    assert effnet.pooled([skimage.data.chelsea()]).shape == (1, 1280)


def test_effnet_distance_grows_with_distortion(effnet):
    a = skimage.data.astronaut()[:160, :160]
    assert effnet_distance(a, a, extractor=effnet) == 0.0
    d = [effnet_distance(_noisy(a, s, s), a, extractor=effnet) for s in (3, 15, 50)]
    assert 0 < d[0] < d[1] < d[2]
    with pytest.raises(GenimgError, match="at least 32x32"):
        effnet_distance(a[:16, :16], a[:16, :16], extractor=effnet)


def test_lpips_is_unavailable_with_a_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("GENIMG_LPIPS_WEIGHTS", str(tmp_path / "nope.safetensors"))
    a = skimage.data.astronaut()[:64, :64]
    with pytest.raises(ModelUnavailableError, match="LPIPS unavailable: .*AlexNet.*nope.safetensors"):
        lpips(a, a)


def test_lpips_loading_code_reads_the_lpips_package_layout(monkeypatch, tmp_path):
    """Random weights saved under the lpips package's key names load and behave like a distance."""
    import torch
    from safetensors.torch import save_file

    from genimg.metrics.features import LPIPSAlex

    torch.manual_seed(0)
    model = LPIPSAlex()
    state = {}
    for key, value in model.state_dict().items():
        if key in ("shift", "scale"):
            state[f"scaling_layer.{key}"] = value
        elif key.startswith("lins."):
            state[f"lin{key.split('.')[1]}.model.1.weight"] = value.abs()
        else:
            state[key] = value
    path = tmp_path / "lpips_alex.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    monkeypatch.setenv("GENIMG_LPIPS_WEIGHTS", str(path))
    a = skimage.data.astronaut()[:96, :96]
    assert lpips(a, a) == pytest.approx(0.0, abs=1e-7)
    assert lpips(_noisy(a, 40), a) > lpips(_noisy(a, 5), a) > 0


def test_diversity(effnet):
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.rocket(), skimage.data.chelsea()]
    result = diversity(photos, extractor=effnet)
    assert result.near_duplicate_rate == 0.0 and result.mean_pairwise_distance > 0.3
    # skimage's cat() is chelsea(); and a JPEG copy is a near duplicate too
    buffer = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buffer, "JPEG", quality=75)
    result = diversity(photos + [skimage.data.cat(), np.asarray(Image.open(buffer))], extractor=effnet)
    assert result.near_duplicate_rate == pytest.approx(4 / 6)
    assert {(i, j) for i, j, _ in result.near_duplicate_pairs} == {(0, 5), (3, 4)}
    same = diversity([photos[0]] * 3, extractor=effnet)
    assert same.mean_pairwise_distance == pytest.approx(0.0, abs=1e-9) and same.near_duplicate_rate == 1.0
    with pytest.raises(GenimgError, match="at least 2"):
        diversity(photos[:1], extractor=effnet)


def test_fd_kid_effnet_on_images(effnet):
    from genimg.metrics import fd_effnet, kid_effnet

    photos = [skimage.data.astronaut()[i:i + 160, j:j + 160] for i in (0, 300) for j in (0, 300)]
    result = fd_effnet(photos, photos, extractor=effnet, bootstrap=0)
    assert result.name == "FD-EffNetLite0" and result.value <= 1e-6 * np.trace(np.cov(effnet.pooled(photos), rowvar=False))
    assert "biased" in result.warning
    blurred = [_blur(p, 4) for p in photos]
    assert fd_effnet(photos, blurred, extractor=effnet, bootstrap=0).value > 10 * max(result.value, 1e-9)
    kid_blur = kid_effnet(photos, blurred, extractor=effnet, bootstrap=0)
    assert kid_blur.name == "KID-EffNetLite0" and kid_blur.value > 0
    with pytest.raises(GenimgError, match="empty"):
        fd_effnet([], photos, extractor=effnet)


# -- no-reference ------------------------------------------------------------------------------------

def test_brisque_and_niqe_rank_distortions():
    clean = skimage.data.chelsea()
    blurred, noisy = _blur(clean, 3), _noisy(clean, 25)
    assert brisque(clean) < 30 < brisque(blurred) and brisque(clean) < brisque(noisy)
    assert niqe(clean) < 7 < niqe(blurred) and niqe(clean) < niqe(noisy)
    assert niqe(skimage.data.camera()) < niqe(_blur(skimage.data.camera(), 3))  # grayscale input
    with pytest.raises(GenimgError, match="NIQE needs images at least 192x192"):
        niqe(clean[:150, :300])


def test_brisque_scaling_parameters_read_without_unpickling():
    from brisque.models import MODEL_PATH

    from genimg.metrics.no_reference import _read_float_lists

    params = _read_float_lists(__import__("pathlib").Path(MODEL_PATH) / "normalize.pickle")
    assert len(params["min_"]) == len(params["max_"]) == 36
    assert params["min_"][0] == pytest.approx(0.336999) and params["max_"][0] == pytest.approx(9.999411)


def test_matlab_imresize_matrix():
    from genimg.metrics.no_reference import _imresize_matrix

    m = _imresize_matrix(11, 0.5)
    assert m.shape == (6, 11) and np.allclose(m.sum(axis=1), 1.0)
    ramp = np.arange(40, dtype=np.float64)
    inner = (_imresize_matrix(40, 0.5) @ ramp)[2:-2]
    assert np.allclose(inner, np.arange(2, 18) * 2 + 0.5)  # output i samples input 2i + 0.5 (0-based)


def test_simple_statistics():
    camera = skimage.data.camera()
    assert sharpness(_blur(camera, 2)) < sharpness(camera) / 10
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    assert colourfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))
    assert colourfulness(camera) == 0.0
    assert colourfulness(skimage.data.coffee()) > colourfulness(np.repeat(camera[..., None], 3, axis=2))
    halves = np.zeros((10, 10), np.uint8)
    halves[:, 5:] = 200
    assert entropy(halves) == pytest.approx(1.0)


# -- task, CLI command, tab ---------------------------------------------------------------------------

def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def test_compute_metrics_through_the_image_gate(tmp_path):
    from genimg.tasks.metrics import compute_metrics, rows_for_table

    a = skimage.data.astronaut()[:256, :256]
    b = _noisy(a, 10)
    (tmp_path / "ref.png").write_bytes(_png(a))
    result = compute_metrics(_png(b), tmp_path / "ref.png", metrics=["psnr", "SSIM", "ms-ssim", "sharpness", "lpips"])
    rows = result["metrics"]
    assert list(rows) == ["psnr", "ssim", "ms_ssim", "sharpness", "lpips"]
    assert rows["psnr"]["value"] == pytest.approx(peak_signal_noise_ratio(a, b), abs=1e-9)
    assert rows["ssim"]["value"] == pytest.approx(_sk_ssim(b, a, 255), abs=1e-6)
    assert rows["lpips"]["status"] == "unavailable" and "AlexNet" in rows["lpips"]["reason"]
    assert all(r["seconds"] >= 0 for r in rows.values())
    assert rows_for_table(result)[0][:3] == ["PSNR", rows["psnr"]["display"], "higher is better"]
    same = compute_metrics(_png(a), _png(a), metrics=["psnr"])
    assert same["metrics"]["psnr"]["display"] == "∞"
    # no reference: the defaults are the no-reference metrics
    alone = compute_metrics(_png(a))
    assert "psnr" not in alone["metrics"] and alone["metrics"]["niqe"]["status"] == "ok"
    with pytest.raises(GenimgError, match="unknown metric 'fid'"):
        compute_metrics(_png(a), metrics=["fid"])
    with pytest.raises(GenimgError, match="PSNR compares with a reference"):
        compute_metrics(_png(a), metrics=["psnr"])
    with pytest.raises(GenimgError, match="256x256 but reference is 200x256.*resize"):
        compute_metrics(_png(a), _png(a[:, :200]), metrics=["psnr"])
    resized = compute_metrics(_png(a), _png(a[:, :200]), metrics=["psnr"], resize_to_match=True)
    assert resized["resized"] and resized["metrics"]["psnr"]["value"] > 10
    with pytest.raises(GenimgError, match="not an image"):
        compute_metrics(b"hello, not an image")
    with pytest.raises(GenimgError, match="NIQE needs images at least 192x192"):
        compute_metrics(_png(a[:100, :100]), metrics=["niqe"])


def test_cli_command(tmp_path, capsys):
    from genimg.cli.common import Parser as _Parser
    from genimg.cli.metrics import register

    parser = _Parser(prog="python -m genimg")
    register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
    a = skimage.data.astronaut()[:200, :200]
    (tmp_path / "a.png").write_bytes(_png(a))
    (tmp_path / "b.png").write_bytes(_png(_noisy(a, 8)))
    args = parser.parse_args(["metrics", "--image", str(tmp_path / "b.png"), "--reference", str(tmp_path / "a.png"),
                              "--metrics", "psnr", "ssim", "--json"])
    payload = args.func(args)
    text = json.dumps(payload)  # what genimg.cli.main prints
    assert json.loads(text)["metrics"]["ssim"]["value"] == pytest.approx(_sk_ssim(_noisy(a, 8), a, 255), abs=1e-6)
    args = parser.parse_args(["metrics", "--image", str(tmp_path / "a.png"), "--reference", str(tmp_path / "a.png"),
                              "-m", "psnr"])
    args.func(args)
    assert "∞" in capsys.readouterr().out
    args = parser.parse_args(["metrics", "--image", str(tmp_path / "a.png"), "--reference", str(tmp_path / "a.png"),
                              "-m", "psnr", "--json"])
    assert json.loads(json.dumps(args.func(args)))["metrics"]["psnr"]["value"] == "inf"
    with pytest.raises(GenimgError, match="no image given"):
        args = parser.parse_args(["metrics"])
        args.func(args)


def test_metrics_tab_builds_and_answers(tmp_path):
    import gradio as gr

    from genimg.ui import metrics_tab

    with gr.Blocks() as demo:
        metrics_tab.build(None, None)
    [fn] = [f for f in demo.fns.values() if f.api_name == "metrics"]
    a = skimage.data.astronaut()[:200, :200]
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(_noisy(a, 8)).save(tmp_path / "b.png")
    rows, details = fn.fn(str(tmp_path / "b.png"), str(tmp_path / "a.png"), ["psnr", "ssim", "entropy"], False)
    assert [r[0] for r in rows] == ["PSNR", "SSIM", "Entropy"]
    assert details["metrics"]["ssim"]["value"] == pytest.approx(_sk_ssim(_noisy(a, 8), a, 255), abs=1e-6)
    # no reference uploaded: full-reference ticks are dropped, not an error
    rows, _ = fn.fn(str(tmp_path / "a.png"), None, ["psnr", "entropy"], False)
    assert [r[0] for r in rows] == ["Entropy"]
    with pytest.raises(gr.Error, match="same size"):
        Image.fromarray(a[:, :150]).save(tmp_path / "c.png")
        fn.fn(str(tmp_path / "c.png"), str(tmp_path / "a.png"), ["psnr"], False)


def test_bench_metrics_reports_ratios():
    from genimg.bench.metrics import bench_metrics

    report = bench_metrics(repeats=1, batches=(1, 3), size=64)  # small: a smoke run; the real one is 256x256, 1 and 16
    assert set(report["ssim_throughput"]) == {"batch1", "batch3"}
    assert report["ssim_batch3"]["max_abs_diff"] <= 1e-6 and report["ssim_batch1"]["max_abs_diff"] <= 1e-6
    assert all(r > 0 for r in report["ssim_throughput"].values())
