"""Text-to-image and compare through the task functions (the path the UI, CLI and API share)."""

from __future__ import annotations

import numpy as np
import pytest

from genimg.errors import GenimgError
from genimg.tasks.compare import compare
from genimg.tasks.generate import GenerateRequest, generate


def request(**kw):
    base = dict(prompt="a red circle", model="tiny-a", seed=7, steps=2, width=32, height=32)
    base.update(kw)
    return GenerateRequest(**base)


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_right_size_count_seeds_and_timings(pool):
    result = generate(request(width=48, height=32, batch=3), pool)
    assert [im.size for im in result.images] == [(48, 32)] * 3
    assert result.seeds == [7, 8, 9]
    t = result.timings
    assert t.steps == 2 and t.total_s > 0 and t.denoise_s > 0 and t.decode_s > 0 and t.text_encode_s > 0
    assert t.denoise_s + t.decode_s + t.text_encode_s <= t.total_s * 1.01
    assert not t.warm and t.load_s > 0
    assert generate(request(), pool).timings.warm


def test_same_seed_same_image_and_batch_independence(pool):
    a = generate(request(seed=11), pool).images[0]
    b = generate(request(seed=11), pool).images[0]
    c = generate(request(seed=12), pool).images[0]
    batch = generate(request(seed=11, batch=2), pool).images
    assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(a), pixels(c))
    # Image i of a batch depends only on seed + i (max diff 1 allows batched-matmul rounding).
    assert np.abs(pixels(batch[0]) - pixels(a)).max() <= 1
    assert np.abs(pixels(batch[1]) - pixels(c)).max() <= 1


def test_random_seed_is_reported_and_reproduces(pool):
    first = generate(request(seed=-1), pool)
    again = generate(request(seed=first.seeds[0]), pool)
    assert np.array_equal(pixels(first.images[0]), pixels(again.images[0]))


def test_scheduler_switch_changes_the_sampler_and_is_restored(pool):
    default = generate(request(), pool).images[0]
    ddim = generate(request(scheduler="ddim"), pool).images[0]
    assert not np.array_equal(pixels(default), pixels(ddim))
    with pool.acquire("tiny-a") as lease:
        pass
    assert type(lease.model.scheduler).__name__ == "DDIMScheduler"
    back = generate(request(scheduler="default"), pool).images[0]
    assert np.array_equal(pixels(default), pixels(back))
    for name in ("euler", "euler_a", "dpmpp_2m", "unipc", "lcm"):
        assert generate(request(scheduler=name), pool).images[0].size == (32, 32)


def test_progress_is_reported_per_step(pool):
    seen = []
    generate(request(steps=3), pool, progress=lambda step, total: seen.append((step, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("change, message", [
    (dict(model="nope"), "unknown model 'nope'"),
    (dict(width=0), "width must be between 8 and"),
    (dict(width=100000), "width must be between 8 and"),
    (dict(width=36), "multiples of 8"),
    (dict(steps=0), "steps must be between 1 and"),
    (dict(steps=10000), "steps must be between 1 and"),
    (dict(prompt=""), "prompt is empty"),
    (dict(prompt="   "), "prompt is empty"),
    (dict(prompt="x" * 100_000), "prompt is 100000 characters long"),
    (dict(batch=0), "batch must be between 1 and"),
    (dict(batch=1000), "batch must be between 1 and"),
    (dict(guidance=float("nan")), "guidance must be a finite number"),
    (dict(guidance=float("inf")), "guidance must be a finite number"),
    (dict(scheduler="warp"), "unknown scheduler 'warp'"),
    (dict(seed=2**40), "seed must be between -1 and"),
    (dict(steps=2.5), "steps must be a whole number"),
])
def test_bad_input_gets_a_clear_error(pool, change, message):
    with pytest.raises(GenimgError, match=message):
        generate(request(**change), pool)


def test_a_huge_request_is_refused_before_loading(pool):
    with pytest.raises(GenimgError):
        generate(request(width=2048, height=2048 + 8), pool)
    assert not pool.is_loaded("tiny-a")


def test_compare_same_seeds_one_column_per_model(pool):
    result = compare(request(batch=2), ["tiny-a", "tiny-b"], pool)
    assert [c.model for c in result.cells] == ["tiny-a", "tiny-b"]
    assert result.seeds == [7, 8]
    for cell in result.cells:
        assert cell.result.seeds == [7, 8]
        assert [im.size for im in cell.result.images] == [(32, 32), (32, 32)]
        summary = cell.summary()
        assert summary["wall_s"] > 0 and summary["steps_per_s"] > 0 and summary["load_s"] > 0
        assert summary["warmup_s"] > 0  # freshly loaded: one warm-up call ran before timing
    a, b = (pixels(c.result.images[0]) for c in result.cells)
    assert not np.array_equal(a, b)  # different weights, same seed
    # Compare reproduces what generate makes for the same model and seed.
    single = generate(request(model="tiny-b", seed=7), pool).images[0]
    assert np.abs(pixels(single) - b).max() <= 1
    warm = compare(request(), ["tiny-a", "tiny-b"], pool)
    assert all(c.summary()["load_s"] == 0 and c.warmup_s == 0 for c in warm.cells)


def test_compare_reports_a_missing_model_in_its_cell(pool):
    result = compare(request(), ["tiny-a", "missing-hub"], pool)
    ok, missing = result.cells
    assert ok.result is not None and ok.error is None
    assert missing.result is None and "cannot be loaded here" in missing.error


@pytest.mark.parametrize("models, message", [
    (["tiny-a"], "at least 2 models"),
    (["tiny-a", "tiny-a"], "same model twice"),
    (["tiny-a", "tiny-b", "tiny-a", "tiny-b", "missing-hub"], "at most 4 models"),
    (["tiny-a", "nope"], "unknown model 'nope'"),
])
def test_compare_model_list_is_validated(pool, models, message):
    with pytest.raises(GenimgError, match=message):
        compare(request(), models, pool)
    assert not pool.loaded()
