"""Scale-out on Ray Serve: ``python -m genimg serve --ray`` on a real local Ray instance.

The server runs as a user starts it, in its own process, with a serve config of the two
embedded diffusion models on this machine's 2 CPUs; the tests call its API like any client.
What a user would notice is asserted: /generate answers with an image made by a named replica,
/compare names two different replicas, concurrent requests share a batch in the replica, a
replica killed mid-request costs one retry (or one clear error) and the dashboard keeps
serving, and stopping the server leaves no Ray process behind. The planner's rules (what
fits, what is refused) are tested as the pure functions they are.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from genimg.errors import GenimgError
from genimg.models.catalog import load_catalog
from genimg.serve.config import ServeConfig, plan_deployments, read_config
from tests.conftest import ServedApp

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

TEST_CONFIG = """
[ray]
num_cpus = 2

[[deployment]]
model = "genimg-diffusion"
num_cpus = 0.5

[[deployment]]
model = "genimg-fewstep"
num_cpus = 0.5
max_batch_size = 8
batch_wait_timeout_s = 1.0     # a wide window, so that concurrent test requests surely share a call
"""


# -- the planner (pure) --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def everything_available(catalog):
    return {model_id: (True, "ok") for model_id in catalog}


def test_default_plan_deploys_every_embedded_model_within_the_cluster(catalog):
    plans = plan_deployments(ServeConfig(), catalog, everything_available(catalog), cluster_cpus=2, cluster_gpus=0)
    assert [p.model for p in plans] == ["genimg-diffusion", "genimg-fewstep", "genimg-gan", "genimg-vae",
                                        "genimg-emoji"]
    assert sum(p.num_cpus * p.num_replicas for p in plans) <= 2
    assert all(p.num_gpus == 0 and p.threads == 1 and not p.own_device for p in plans)


def test_plan_takes_gpus_from_the_catalog_only_where_the_cluster_has_them(catalog):
    config = ServeConfig(deployments=[{"model": "sd-1.5"}, {"model": "genimg-fewstep", "num_gpus": 1}])
    plans = plan_deployments(config, catalog, everything_available(catalog), cluster_cpus=16, cluster_gpus=4)
    assert [(p.model, p.num_gpus, p.own_device) for p in plans] == [("sd-1.5", 1.0, True), ("genimg-fewstep", 1.0, True)]


@pytest.mark.parametrize("deployments, message", [
    ([{"model": "nope"}], "unknown model 'nope'"),
    ([{"model": "realesrgan-x4plus"}], "does not do text-to-image"),
    ([{"model": "genimg-gan"}, {"model": "genimg-gan"}], "deployed twice"),
    ([{"model": "genimg-gan", "num_cpus": 3}], "ask for 3 CPUs but the Ray cluster has 2"),
    ([{"model": "genimg-gan", "num_gpus": 1}], "ask for 1 GPUs but the Ray cluster has 0"),
    ([{"model": "genimg-gan", "num_replicas": 0}], "num_replicas must be between 1 and 64"),
    ([{"model": "genimg-gan", "threads": "four"}], "threads must be a whole number"),
])
def test_plan_refuses_what_cannot_run_in_words(catalog, deployments, message):
    with pytest.raises(GenimgError, match=message):
        plan_deployments(ServeConfig(deployments=deployments), catalog, everything_available(catalog), 2, 0)


def test_plan_refuses_a_model_whose_weights_are_missing(catalog):
    available = {**everything_available(catalog), "sd-1.5": (False, "weights not downloaded")}
    with pytest.raises(GenimgError, match="'sd-1.5' cannot be loaded here: weights not downloaded"):
        plan_deployments(ServeConfig(deployments=[{"model": "sd-1.5"}]), catalog, available, 8, 1)


def test_config_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "serve.toml"
    bad.write_text('[[deployment]]\nmodel = "genimg-gan"\nreplicas = 2\n')
    with pytest.raises(GenimgError, match="unknown key replicas"):
        read_config(bad)
    bad.write_text("[ray\n")
    with pytest.raises(GenimgError, match="not valid TOML"):
        read_config(bad)
    with pytest.raises(GenimgError, match="not found"):
        read_config(tmp_path / "missing.toml")


def test_example_config_in_the_docs_is_valid(catalog):
    config = read_config(ROOT / "docs" / "serve.example.toml")
    plans = plan_deployments(config, catalog, everything_available(catalog), cluster_cpus=16, cluster_gpus=4)
    assert {p.model for p in plans} >= {"genimg-diffusion", "genimg-fewstep"}


def test_the_single_process_app_never_imports_ray():
    code = ("import sys; import genimg.ui.app, genimg.cli, genimg.tasks.compare, genimg.tasks.batching; "
            "sys.exit(1 if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_bad_config_exits_2_with_one_error_line(tmp_path):
    bad = tmp_path / "serve.toml"
    bad.write_text('[[deployment]]\nmodel = "genimg-gan"\nreplica = 2\n')
    done = subprocess.run([sys.executable, "-m", "genimg", "serve", "--ray", "--config", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unknown key replica" in errors[0], done.stderr


# -- the real thing: python -m genimg serve --ray ------------------------------------------------------------------
def ray_processes(ray_tmp: str) -> list[int]:
    """Pids of every process of the Ray instance living under ``ray_tmp`` (raylet, GCS, workers...)."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(ray_tmp in part for part in proc.info["cmdline"] or []):
                pids.append(proc.info["pid"])
        except psutil.Error:
            continue
    return pids


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-ray")
    config = tmp / "serve.toml"
    config.write_text(TEST_CONFIG)
    # Ray's unix sockets live under RAY_TMPDIR: keep the path short (108 bytes at most).
    ray_tmp = tempfile.mkdtemp(prefix="gr-", dir="/tmp")
    server = ServedApp(tmp, {"RAY_TMPDIR": ray_tmp, "GENIMG_MICROBATCH": "8"},
                       command=["-m", "genimg", "serve", "--ray", "--config", str(config), "--json"],
                       start_timeout=400, stop_timeout=90)
    server.ray_tmp = ray_tmp
    yield server
    if server.proc.poll() is None:
        server.close()


@pytest.fixture(scope="module")
def client(ray_server):
    from gradio_client import Client

    return Client(ray_server.url, verbose=False)


def generate(client, prompt="a red circle", model="genimg-fewstep", steps=4, seed=7, batch=1):
    return client.predict(prompt, "", model, 64, 64, steps, None, "default", seed, batch, api_name="/generate")


def compare(client, steps=None, seed=5):
    return client.predict("a blue square above a red circle", "", ["genimg-diffusion", "genimg-fewstep"],
                          64, 64, steps, None, "default", seed, 1, True, steps is None, api_name="/compare")


def test_serve_json_says_what_was_deployed(ray_server):
    first = ray_server.log_path.read_text().splitlines()
    payload = json.loads(next(line for line in first if line.startswith('{"command": "serve"')))
    assert payload["started_ray"] is True and payload["cluster"]["cpus"] == 2
    assert [d["model"] for d in payload["deployments"]] == ["genimg-diffusion", "genimg-fewstep"]


def test_generate_answers_with_an_image_made_by_a_named_replica(client):
    from PIL import Image

    gallery, timing, record = generate(client, batch=2)
    assert len(gallery) == 2
    assert Image.open(gallery[0]["image"]).size == (64, 64)
    replica = record["replica"]
    assert replica["deployment"] == "genimg-fewstep" and replica["id"] and replica["node"] and replica["pid"] > 0
    assert replica["pid"] not in (os.getpid(),)
    assert "replica " + replica["id"] in timing
    # The PNG a visitor downloads names the replica too (its JSON record).
    assert json.loads(Image.open(gallery[0]["image"]).text["genimg"])["replica"]["id"] == replica["id"]


def test_compare_names_two_different_replicas_with_their_own_timings(client):
    gallery, table, payload = compare(client)
    replicas = [cell["replica"] for cell in payload["cells"]]
    assert [r["deployment"] for r in replicas] == ["genimg-diffusion", "genimg-fewstep"]
    assert replicas[0]["id"] != replicas[1]["id"] and replicas[0]["pid"] != replicas[1]["pid"]
    assert all(cell["denoise_s"] > 0 and cell["steps_per_s"] > 0 for cell in payload["cells"])
    assert [row[0] for row in table["data"]] == ["genimg-diffusion", "genimg-fewstep"]
    assert all("replica " in row[1] for row in table["data"])
    assert len(gallery["value"]) == 2


def test_concurrent_generate_requests_share_a_call_in_the_replica(client):
    from PIL import Image
    import numpy as np

    # Distinct seeds: identical concurrent outputs would share one file in Gradio's cache.
    asks = [("a red circle" if i % 2 == 0 else "a blue square", 11 + i) for i in range(4)]
    jobs = [client.submit(prompt, "", "genimg-fewstep", 64, 64, 4, None, "default", seed, 1, api_name="/generate")
            for prompt, seed in asks]
    results = [job.result(timeout=300) for job in jobs]
    shared = [record["timings"]["batch_requests"] for _, _, record in results]
    assert max(shared) >= 2, f"no request shared a pipeline call: {shared}"
    # Sharing a call changes nothing in an image (each is drawn from its own seeded generator).
    for (prompt, seed), (gallery, _, _) in zip(asks, results):
        solo = generate(client, prompt=prompt, seed=seed)[0][0]["image"]
        a = np.asarray(Image.open(gallery[0]["image"]), dtype=int)
        assert np.abs(a - np.asarray(Image.open(solo), dtype=int)).max() <= 1


@pytest.mark.browser
def test_the_dashboard_in_front_of_ray_shows_which_replica_ran_each_column(ray_server, artifacts_dir):
    """A stakeholder's view: the same Compare tab; the timings table says where each model ran."""
    from playwright.sync_api import expect, sync_playwright

    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
    from tests.test_browser_walkthrough import VIEWPORT, assert_images_readable, assert_no_toast, table_rows

    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (bash scripts/setup.sh --test)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)
        page.goto(ray_server.url, wait_until="domcontentloaded")
        expect(page.get_by_text("models served by Ray Serve deployments")).to_be_visible()
        page.get_by_role("tab", name="Compare").click()
        page.locator("#compare-examples").get_by_text("three green triangles on a black background").click()
        page.locator("#compare-button").click()
        rows = table_rows(page, "#compare-table")
        assert_images_readable(page, "#compare-gallery img", count=len(rows))
        by_model = {row[0]: row for row in rows}
        for model in ("genimg-diffusion", "genimg-fewstep"):  # deployed: run by their replicas
            assert "replica " in by_model[model][1], by_model[model]
        for model in set(by_model) - {"genimg-diffusion", "genimg-fewstep"}:  # not deployed: run in the dashboard
            assert "replica" not in by_model[model][1], by_model[model]
        assert all(row[-1] == "" for row in rows), rows
        assert_no_toast(page, "Compare over Ray Serve")
        page.wait_for_timeout(600)
        page.screenshot(path=str(artifacts_dir / "ray-serve-compare.png"), full_page=True)
        browser.close()


def test_a_replica_killed_mid_request_costs_one_retry_and_the_dashboard_keeps_serving(client, ray_server):
    victim = generate(client, model="genimg-diffusion", steps=5)[2]["replica"]
    job = client.submit("a blue square above a red circle", "", "genimg-diffusion", 64, 64, 200, None, "default", 5, 1,
                        api_name="/generate")
    deadline = time.time() + 60
    while job.status().code.name not in ("PROCESSING", "PROGRESS") and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # inside the 200 denoising steps
    os.kill(victim["pid"], signal.SIGKILL)
    try:
        _, _, record = job.result(timeout=300)
    except Exception as exc:  # the retry found no replica in time: one clear error, in words
        assert "replica stopped" in str(exc) and "try again" in str(exc), exc
    else:  # retried on the replica Ray started in its place
        assert record["replica"]["pid"] != victim["pid"] and record["params"]["steps"] == 200
    assert ray_server.alive()
    # The other deployment never noticed; the killed one is back (Ray restarted it).
    assert compare(client)[2]["cells"][1]["replica"]["deployment"] == "genimg-fewstep"
    assert generate(client, model="genimg-diffusion", steps=5)[2]["replica"]["pid"] != victim["pid"]
    assert "a replica was lost during generate" in ray_server.log_path.read_text()


def test_stopping_the_server_leaves_no_ray_process_behind(ray_server):
    assert ray_processes(ray_server.ray_tmp), "the Ray instance should be running under RAY_TMPDIR"
    ray_server.close()
    assert ray_server.proc.returncode is not None
    deadline = time.time() + 30
    while ray_processes(ray_server.ray_tmp) and time.time() < deadline:
        time.sleep(0.5)
    assert ray_processes(ray_server.ray_tmp) == []
    assert "stopping the deployments and Ray" in ray_server.log_path.read_text()
