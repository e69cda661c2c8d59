"""Routes without Ray: a model served by another pool (a real one, in this process) through the Route contract.

What `serve --ray` relies on, checked on the tiny pipelines: a routed model's request runs where
its route sends it (same images as running it here), a user error comes back in its words, and
Compare fans out in parallel only when every model has an accelerator of its own.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from genimg.errors import GenimgError
from genimg.models.pool import ModelPool
from genimg.tasks.compare import compare, compare_cell
from genimg.tasks.generate import GenerateRequest, generate


class PoolRoute:
    """A Route to another ModelPool: the task functions run there, as they do in a replica."""

    def __init__(self, model_id: str, serving_pool: ModelPool, own_device: bool):
        self.model_id, self.serving_pool, self.own_device = model_id, serving_pool, own_device
        self.calls: list[tuple[str, str]] = []   # (task, thread name)

    def call(self, task, kwargs, progress=None):
        self.calls.append((task, threading.current_thread().name))
        if task == "generate":
            return generate(kwargs["request"], self.serving_pool, progress)
        if task == "compare_cell":
            return compare_cell(kwargs["request"], kwargs["model_id"], kwargs["seed"], self.serving_pool,
                                kwargs["warmup"], progress)
        raise AssertionError(task)


@pytest.fixture()
def serving_pool(tiny_catalog):
    return ModelPool(dict(tiny_catalog), budget_bytes=1 << 34, served_by=lambda: {"id": "r1", "node": "n1"})


def request(**kw):
    return GenerateRequest(prompt="a red circle", model=kw.pop("model", "tiny-a"), seed=3, **kw)


def test_a_routed_model_runs_where_its_route_sends_it_with_the_same_images(pool, serving_pool):
    here = generate(request(), pool)
    route = PoolRoute("tiny-a", serving_pool, own_device=False)
    pool.set_route("tiny-a", route)
    there = generate(request(), pool)
    assert [task for task, _ in route.calls] == ["generate"]
    assert not pool.is_loaded("tiny-a") or here  # the serving pool did the work
    assert serving_pool.is_loaded("tiny-a")
    assert there.replica == {"id": "r1", "node": "n1"} and there.record(0)["replica"]["id"] == "r1"
    assert here.replica is None and "replica" not in here.record(0)
    assert np.array_equal(np.asarray(here.images[0]), np.asarray(there.images[0]))


def test_a_bad_request_fails_before_it_is_forwarded(pool, serving_pool):
    route = PoolRoute("tiny-a", serving_pool, own_device=False)
    pool.set_route("tiny-a", route)
    with pytest.raises(GenimgError, match="steps must be between"):
        generate(request(steps=100000), pool)
    assert route.calls == []


@pytest.mark.parametrize("own_device, parallel", [(False, False), (True, True)])
def test_compare_fans_out_only_when_every_model_has_a_device_of_its_own(pool, serving_pool, own_device, parallel):
    routes = {m: PoolRoute(m, serving_pool, own_device) for m in ("tiny-a", "tiny-b")}
    for model_id, route in routes.items():
        pool.set_route(model_id, route)
    result = compare(request(), ["tiny-a", "tiny-b"], pool, warmup=False)
    assert [c.model for c in result.cells] == ["tiny-a", "tiny-b"] and all(c.result for c in result.cells)
    threads = [name for route in routes.values() for _, name in route.calls]
    assert len(threads) == 2
    assert all(name.startswith("genimg-fan-out") for name in threads) == parallel
    assert all(name == threading.current_thread().name for name in threads) == (not parallel)


def test_one_local_model_keeps_a_comparison_sequential(pool, serving_pool):
    route = PoolRoute("tiny-a", serving_pool, own_device=True)
    pool.set_route("tiny-a", route)
    compare(request(), ["tiny-a", "tiny-b"], pool, warmup=False)
    assert route.calls == [("compare_cell", threading.current_thread().name)]


def test_evaluate_generates_a_routed_models_rows_in_its_replica_and_scores_them_here(pool, serving_pool, tmp_path):
    from genimg.tasks.evaluate import EvaluateRequest, evaluate

    ask = EvaluateRequest(models=["tiny-a"], prompts=["a red circle", "a blue square"], seeds=[1, 2],
                          metrics=["sharpness"], cache_dir=tmp_path / "local", warmup=False)
    here = evaluate(ask, pool)
    route = PoolRoute("tiny-a", serving_pool, own_device=False)
    pool.set_route("tiny-a", route)
    there = evaluate(EvaluateRequest(**{**ask.__dict__, "cache_dir": tmp_path / "routed"}), pool)
    assert [task for task, _ in route.calls] == ["generate"] * 4
    assert there.generated == 4 and not there.errors
    for a, b in zip(here.rows, there.rows):
        assert (a.prompt, a.seed) == (b.prompt, b.seed)
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
        assert a.metrics["sharpness"] == pytest.approx(b.metrics["sharpness"])
