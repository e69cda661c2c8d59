"""Load, short form: 16 concurrent gradio clients on /generate (tiny pipeline) and /metrics against the
app on loopback. Every request answered, or refused by the full queue with "please try again";
none lost, none answered with another request's result, memory back to its baseline.
The long form: ``python -m genimg bench --load``."""

from __future__ import annotations

import threading

import pytest

from genimg.errors import GenimgError
from genimg.bench.load import run_load
from genimg.models.pool import ModelPool

# Growth over the second half of the run (32 requests, after concurrency's one-time growth of
# thread pools and allocator arenas, ~100 MB here): measured ~5 MB. A leak of 1 MB or more per
# request would show; smaller ones hide in allocator noise at this count (the long form has 200).
RSS_TOLERANCE = 32 * 2**20


@pytest.fixture(scope="module")
def load_pool(tiny_catalog):
    return ModelPool({"tiny-a": tiny_catalog["tiny-a"]}, budget_bytes=1 << 34)


def test_16_clients_every_request_answered_with_its_own_result(load_pool):
    from genimg.ui.app import build_app

    result = run_load(build_app(load_pool), clients=16, requests_per_client=3, model="tiny-a", timeout_s=240)
    print(result)
    assert result["sent"] == 48
    assert result["answered"] == 48, result
    assert result["rejected"] == result["errors"] == result["lost"] == result["mismatched"] == 0
    assert result["per_endpoint"]["/generate"]["answered"] == result["per_endpoint"]["/metrics"]["answered"] == 24
    assert abs(result["rss_growth"]) < RSS_TOLERANCE, result


def test_a_full_queue_refuses_cleanly_and_loses_nothing(load_pool, monkeypatch):
    from genimg.tasks.batching import Coalescer
    from genimg.ui.app import build_app

    monkeypatch.setenv("GENIMG_QUEUE_SIZE", "3")
    demo = build_app(load_pool)

    def stall_server() -> None:  # the running request waits on the model's lock, so the queue fills
        handle = next(h for h in load_pool.loaded() if h.spec.id == "tiny-a")
        handle.lock.acquire()
        threading.Timer(3.0, handle.lock.release).start()

    # /generate lets as many requests in as one micro-batch holds (they wait for the model together)
    running = Coalescer.from_settings().max_images
    clients = running + 3 + 9
    result = run_load(demo, clients=clients, requests_per_client=1, endpoints=("/generate",), model="tiny-a",
                      reference=False, before_load=stall_server, timeout_s=120)
    print(result)
    assert result["sent"] == clients and result["answered"] + result["rejected"] == clients, result
    # the running ones + 3 queued are answered, the rest refused (2 of slack for arrival order)
    assert result["rejected"] >= 9 - 2 and result["answered"] >= 3
    assert result["lost"] == result["errors"] == result["mismatched"] == 0
    assert result["rejected_messages"] == ["Queue is full! Please try again."]


@pytest.mark.parametrize("kwargs, words", [
    (dict(target="http://10.0.0.1:7860/", model="tiny-a"), "only runs against a loopback address"),
    (dict(target="http://127.0.0.1:9/", endpoints=("/style",)), "not '/style'"),
    (dict(target="http://127.0.0.1:9/"), "needs a model for /generate"),
])
def test_bad_load_parameters_are_refused(kwargs, words):
    with pytest.raises(GenimgError, match=words):
        run_load(**kwargs)
