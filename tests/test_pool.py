"""The shared pool: real loading code, reuse, eviction, locks, from_pipe sharing, faults."""

from __future__ import annotations

import threading
import time

import pytest

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.device import module_nbytes
from genimg.models.pool import ModelPool


def test_loads_through_diffusers_and_reuses_the_handle(pool):
    with pool.acquire("tiny-a") as first:
        assert first.cold and first.load_seconds > 0
        model = first.model
        assert type(model).__name__ == "StableDiffusionPipeline"
    with pool.acquire("tiny-a") as second:
        assert not second.cold and second.load_seconds == 0.0
        assert second.model is model  # the same object: no reload
    assert pool.loaded()[0].uses == 2


def test_unknown_model_is_a_clear_error(pool):
    with pytest.raises(GenimgError, match="unknown model 'nope'.*tiny-a"):
        with pool.acquire("nope"):
            pass


def test_missing_hub_weights_offline_say_how_to_provide_them(pool):
    ok, reason = pool.availability("missing-hub")
    assert not ok and "Hugging Face cache" in reason and "huggingface-cli download" in reason
    with pytest.raises(ModelUnavailableError, match="cannot be loaded here.*local folder"):
        with pool.acquire("missing-hub"):
            pass


def test_lru_eviction_under_a_small_budget(tiny_catalog):
    one_model = None
    probe = ModelPool(dict(tiny_catalog), budget_bytes=1 << 34)
    with probe.acquire("tiny-a") as lease:
        one_model = module_nbytes(lease.model)
    # Room for one tiny pipeline, not two.
    small = ModelPool(dict(tiny_catalog), budget_bytes=int(one_model * 1.5))
    with small.acquire("tiny-a"):
        pass
    with small.acquire("tiny-b"):
        pass
    assert [h.spec.id for h in small.loaded()] == ["tiny-b"]
    assert small.evictions == ["tiny-a"]
    with small.acquire("tiny-a") as lease:
        assert lease.cold  # reloaded after eviction
    assert small.evictions == ["tiny-a", "tiny-b"]


def test_a_handle_in_use_is_never_evicted(tiny_catalog):
    small = ModelPool(dict(tiny_catalog), budget_bytes=1)
    with small.acquire("tiny-a"):
        with small.acquire("tiny-b"):
            ids = {h.spec.id for h in small.loaded()}
            assert ids == {"tiny-a", "tiny-b"}  # tiny-a is locked by the outer request


def test_the_lock_serialises_concurrent_requests(pool):
    inside = 0
    overlap = []
    lock = threading.Lock()

    def request():
        nonlocal inside
        with pool.acquire("tiny-a"):
            with lock:
                inside += 1
                overlap.append(inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(overlap) == 1
    assert len(overlap) == 6
    assert len(pool.loaded()) == 1  # loaded once despite concurrent first requests


def test_from_pipe_variants_share_parameter_storage(pool):
    with pool.acquire("tiny-a") as lease:
        base = lease.model
        img2img = lease.variant("img2img")
        inpaint = lease.variant("inpaint")
        assert type(img2img).__name__ == "StableDiffusionImg2ImgPipeline"
        assert type(inpaint).__name__ == "StableDiffusionInpaintPipeline"
        base_ptrs = {p.data_ptr() for p in base.unet.parameters()}
        for variant in (img2img, inpaint):
            assert {p.data_ptr() for p in variant.unet.parameters()} == base_ptrs
            assert variant.vae is base.vae and variant.text_encoder is base.text_encoder
        assert lease.variant("img2img") is img2img  # cached
        with pytest.raises(GenimgError, match="unknown pipeline variant"):
            lease.variant("video")


def test_a_model_that_raises_is_dropped_and_reloaded(pool):
    with pytest.raises(RuntimeError):
        with pool.acquire("tiny-a"):
            raise RuntimeError("model fault (injected)")  # out of memory: see tests/test_faults.py
    assert not pool.is_loaded("tiny-a")
    with pool.acquire("tiny-a") as lease:
        assert lease.cold


def test_corrupt_weights_give_a_clear_error_and_other_models_keep_working(tiny_dirs, tmp_path):
    import shutil

    from genimg.models.catalog import ModelSpec

    broken = tmp_path / "broken"
    shutil.copytree(tiny_dirs["tiny-a"], broken)
    weights = next((broken / "unet").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:200])  # truncated download
    catalog = {
        "broken": ModelSpec(id="broken", name="broken", backend="diffusers", source=str(broken),
                            tasks=("text-to-image",), dtype="fp32"),
        "tiny-b": ModelSpec(id="tiny-b", name="b", backend="diffusers", source=str(tiny_dirs["tiny-b"]),
                            tasks=("text-to-image",), dtype="fp32"),
    }
    pool = ModelPool(catalog, budget_bytes=1 << 34)
    with pytest.raises(ModelUnavailableError, match="'broken' could not be loaded"):
        with pool.acquire("broken"):
            pass
    assert not pool.is_loaded("broken")
    with pool.acquire("tiny-b") as lease:
        assert lease.model is not None


def test_a_typed_local_folder_loads_only_when_the_server_allows_it(tiny_catalog, tiny_dirs, monkeypatch):
    folder = str(tiny_dirs["tiny-b"])
    monkeypatch.delenv("GENIMG_ALLOW_CUSTOM_MODELS", raising=False)
    pool = ModelPool(dict(tiny_catalog), budget_bytes=1 << 34)
    with pytest.raises(GenimgError, match="unknown model"):
        pool.spec(folder)
    monkeypatch.setenv("GENIMG_ALLOW_CUSTOM_MODELS", "1")
    spec = pool.spec(folder)
    assert spec.backend == "diffusers" and spec.source == folder
    with pool.acquire(folder) as lease:
        assert type(lease.model).__name__ == "StableDiffusionPipeline"
    monkeypatch.setenv("GENIMG_HOSTED", "1")  # hosted mode: catalog models only, whatever else is set
    hosted = ModelPool(dict(tiny_catalog), budget_bytes=1 << 34)
    with pytest.raises(GenimgError, match="unknown model"):
        hosted.spec(folder)


def test_torch_threads_setting(monkeypatch):
    import torch

    from genimg.models.device import configure_cpu_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("GENIMG_TORCH_THREADS", "1")
        assert configure_cpu_threads() == 1 == torch.get_num_threads()
        monkeypatch.setenv("GENIMG_TORCH_THREADS", "0")  # 0 = leave torch's setting alone
        assert configure_cpu_threads() == 1
        for bad in ("two", "-1"):
            monkeypatch.setenv("GENIMG_TORCH_THREADS", bad)
            with pytest.raises(GenimgError, match="GENIMG_TORCH_THREADS"):
                configure_cpu_threads()
    finally:
        torch.set_num_threads(before)
