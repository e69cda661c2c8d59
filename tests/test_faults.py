"""Faults: missing or corrupt weights, a model that raises mid-generation, an out-of-memory error,
a cancelled request. Each gets a clear error, the pool drops the broken handle, the other models
and tabs keep working and the next request for a healthy model succeeds — in the task layer and
through the running app (gradio_client)."""

from __future__ import annotations

import contextlib
import gc
import shutil
import threading
import time
import weakref
from dataclasses import replace

import pytest
import torch
from PIL import Image

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.pool import ModelOutOfMemoryError, ModelPool, is_out_of_memory
from genimg.tasks.compare import compare
from genimg.tasks.generate import GenerateRequest, generate

TINY = {"width": 32, "height": 32, "steps": 2, "guidance": 5.0}


@pytest.fixture(scope="module")
def fault_catalog(tiny_catalog, tiny_dirs, tmp_path_factory):
    """tiny-a, tiny-b, one model with a truncated safetensors file, one whose folder has no weights."""
    root = tmp_path_factory.mktemp("faulty-models")
    broken = root / "broken"
    shutil.copytree(tiny_dirs["tiny-a"], broken)
    weights = next((broken / "unet").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])  # an interrupted download
    empty = root / "no-weights"
    shutil.copytree(tiny_dirs["tiny-a"], empty)
    for path in empty.rglob("*.safetensors"):
        path.unlink()
    catalog = {k: tiny_catalog[k] for k in ("tiny-a", "tiny-b")}
    for model_id, folder in (("broken", broken), ("no-weights", empty)):
        catalog[model_id] = replace(tiny_catalog["tiny-a"], id=model_id, name=model_id, source=str(folder),
                                    default=False)
    return catalog


@pytest.fixture(scope="module")
def fpool(fault_catalog):
    """One pool for the module, like the server's: every test leaves it healthy for the next."""
    return ModelPool(dict(fault_catalog), budget_bytes=1 << 34)


def request(model="tiny-a", seed=3, **kw):
    return GenerateRequest(prompt="a red square", model=model, seed=seed, **kw)


@contextlib.contextmanager
def unet_fault(pool: ModelPool, model_id: str, make_error, on_call: int = 2, allocate: int = 0, gate=None):
    """Load ``model_id`` and make its UNet raise ``make_error()`` on call ``on_call`` (mid-generation).

    ``allocate``: bytes the failing call allocates first (activations that must be freed).
    ``gate``: (entered, release) events: the call signals ``entered`` and waits for ``release``.
    Yields a dict that receives weak references to the allocation and the UNet.
    """
    with pool.acquire(model_id) as lease:
        unet = lease.model.unet
    # Weakly: the failing frame keeps this closure alive, and it must not keep the UNet alive too.
    unet_ref = weakref.ref(unet)
    original = type(unet).forward
    calls = {"n": 0}
    seen: dict[str, weakref.ref] = {"unet": unet_ref}

    def forward(*args, **kwargs):
        calls["n"] += 1
        if gate is not None:
            gate[0].set()
            gate[1].wait(30)
        if calls["n"] == on_call:
            if allocate:
                activations = torch.ones(allocate // 4, dtype=torch.float32)
                seen["activations"] = weakref.ref(activations)
            raise make_error()
        return original(unet_ref(), *args, **kwargs)

    unet.forward = forward
    del unet
    try:
        yield seen
    finally:
        target = unet_ref()
        if target is not None:
            target.__dict__.pop("forward", None)


OOM_ERRORS = {
    "cuda": lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)"),
    "cpu-allocator": lambda: RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate "
                                          "memory: you tried to allocate 21474836480 bytes (injected)"),
    "python": lambda: MemoryError(),
}


# -- task layer ---------------------------------------------------------------------------------------

def test_missing_or_corrupt_weights_are_a_clear_error_and_others_keep_working(fpool):
    for model_id in ("broken", "no-weights"):
        with pytest.raises(ModelUnavailableError, match=f"model '{model_id}' could not be loaded"):
            generate(request(model_id), fpool)
        assert not fpool.is_loaded(model_id)
        assert len(generate(request("tiny-b"), fpool).images) == 1
    with pytest.raises(ModelUnavailableError, match="'broken' could not be loaded"):  # refused again, nothing stuck
        generate(request("broken"), fpool)
    assert [h.spec.id for h in fpool.loaded()] == ["tiny-b"]


@pytest.mark.parametrize("error, oom", [
    *[(make(), True) for make in OOM_ERRORS.values()],
    (RuntimeError("expected scalar type Float but found Half"), False),
    (ValueError("out of memory"), False),  # only the allocators' own errors count
    (KeyError("unet"), False),
])
def test_what_counts_as_out_of_memory(error, oom):
    assert is_out_of_memory(error) is oom


def test_a_model_that_raises_mid_generation_is_dropped_and_the_next_request_succeeds(fpool):
    reference = generate(request(), fpool).images[0]
    with unet_fault(fpool, "tiny-a", lambda: RuntimeError("injected UNet fault")) as seen:
        with pytest.raises(RuntimeError, match="injected UNet fault"):
            generate(request(), fpool)
        assert not fpool.is_loaded("tiny-a")
    gc.collect()
    assert seen["unet"]() is None  # the broken handle's weights are gone
    again = generate(request(), fpool)
    assert again.timings.load_s > 0 and not again.timings.warm  # reloaded from disk
    assert list(again.images[0].getdata()) == list(reference.getdata())
    assert not fpool.loaded()[0].lock.locked()


def test_out_of_memory_is_a_clear_error_the_handle_is_dropped_and_memory_freed(fpool):
    with unet_fault(fpool, "tiny-a", OOM_ERRORS["cuda"], allocate=32 << 20) as seen:
        with pytest.raises(ModelOutOfMemoryError) as info:
            generate(request(), fpool)
        # Still inside pytest.raises' record of the error: the activations must already be gone.
        assert seen["activations"]() is None
    message = str(info.value)
    assert message.startswith("out of memory running model 'tiny-a' on cpu: try a smaller width/height")
    assert isinstance(info.value, GenimgError) and "\n" not in message
    assert not fpool.is_loaded("tiny-a")
    gc.collect()
    assert seen["unet"]() is None
    assert len(generate(request(), fpool).images) == 1


def test_out_of_memory_while_loading_is_the_same_clear_error(fpool, monkeypatch):
    from genimg.models import backends

    backend = backends.get("diffusers")

    def load(spec, placement):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB (injected)")

    fpool.evict("tiny-b")
    monkeypatch.setattr(backend, "load", load)
    with pytest.raises(ModelOutOfMemoryError, match="out of memory loading model 'tiny-b'"):
        generate(request("tiny-b"), fpool)
    monkeypatch.undo()
    assert len(generate(request("tiny-b"), fpool).images) == 1


def test_out_of_memory_in_one_compared_model_leaves_the_other_column(fpool):
    with unet_fault(fpool, "tiny-a", OOM_ERRORS["cuda"], on_call=1):
        result = compare(request(), ["tiny-a", "tiny-b"], fpool, warmup=False)
    cells = {c.model: c for c in result.cells}
    assert cells["tiny-a"].result is None and cells["tiny-a"].error.startswith("out of memory running model 'tiny-a'")
    assert cells["tiny-b"].result is not None and len(cells["tiny-b"].result.images) == 1
    assert not fpool.is_loaded("tiny-a") and fpool.is_loaded("tiny-b")


# -- through the running app ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(fpool):
    from gradio_client import Client

    from genimg.ui.app import build_app
    from tests.conftest import free_port

    pool = fpool
    demo = build_app(pool)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, show_error=True, quiet=True)
    try:
        yield pool, Client(f"http://127.0.0.1:{port}/", verbose=False), f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def api_generate(client, model="tiny-a", seed=4, steps=None):
    return client.predict("a blue circle", "", model, None, None, steps, None, "default", seed, 1,
                          api_name="/generate")


def submit_generate(client, model="tiny-a", seed=4):
    return client.submit("a blue circle", "", model, None, None, None, None, "default", seed, 1, api_name="/generate")


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults-img") / "in.png"
    Image.effect_noise((40, 40), 60).convert("RGB").save(path)
    return str(path)


def other_tab_works(client, png):
    from gradio_client import handle_file

    _table, result = client.predict(handle_file(png), None, ["entropy"], False, api_name="/metrics")
    assert result["metrics"]["entropy"]["status"] == "ok"


def test_app_survives_corrupt_weights_a_fault_and_out_of_memory(served, png):
    pool, client, _url = served
    cases = [
        ("broken", None, "'broken' could not be loaded"),
        ("tiny-a", lambda: RuntimeError("injected UNet fault"), r"internal error \(RuntimeError\): injected UNet fault"),
        ("tiny-a", OOM_ERRORS["cpu-allocator"], "out of memory running model 'tiny-a' on cpu"),
    ]
    for model_id, fault, words in cases:
        fault_ctx = unet_fault(pool, model_id, fault) if fault else contextlib.nullcontext()
        with fault_ctx:
            with pytest.raises(Exception, match=words):
                api_generate(client, model_id)
        assert not pool.is_loaded(model_id)
        gallery, _timing, payload = api_generate(client, "tiny-b")  # another model
        assert len(gallery) == 1 and payload["model"]["id"] == "tiny-b"
        other_tab_works(client, png)  # another tab
        gallery, _timing, payload = api_generate(client, "tiny-a")  # the next request for a healthy model
        assert len(gallery) == 1 and payload["seeds"] == [4]
    assert not any(h.lock.locked() for h in pool.loaded())


def test_a_cancelled_request_releases_the_lock_and_the_next_one_runs(served):
    """Gradio 6 cancels the request's asyncio task but cannot stop its worker thread: the
    generation runs to its end, then ``pool.acquire`` releases the lock and the result is
    dropped. The next request waits for that lock, never for ever."""
    pool, client, _url = served
    api_generate(client, "tiny-a")  # loaded and warm
    entered, release = threading.Event(), threading.Event()
    with unet_fault(pool, "tiny-a", lambda: RuntimeError("never raised"), on_call=10**9, gate=(entered, release)):
        job = submit_generate(client, seed=11)
        assert entered.wait(30), "the generation did not start"
        handle = next(h for h in pool.loaded() if h.spec.id == "tiny-a")
        assert handle.lock.locked()
        job.cancel()
        follow = submit_generate(client, seed=12)
        time.sleep(0.5)
        assert not follow.done()  # waiting for the lock the cancelled generation still holds
        release.set()
        gallery, _timing, payload = follow.result(timeout=60)
    assert payload["seeds"] == [12] and len(gallery) == 1
    deadline = time.monotonic() + 10
    while handle.lock.locked() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not handle.lock.locked()
    assert job.status().code.name == "CANCELLED"
    gallery, _timing, payload = api_generate(client, "tiny-a", seed=13)
    assert payload["seeds"] == [13]
