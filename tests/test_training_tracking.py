"""Training you can watch: a short real GAN run writes TensorBoard events, a trackio run and the
run folder's files; ``runs`` and the Training tab list it; the mode-collapse alarm fires on a
collapsed generator (and not on a healthy one); the best checkpoint is kept and can be exported.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("genimg-data")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory, data_dir):
    """A 12-step tiny GAN run with two evaluations, tracked to every tracker (its own data folder)."""
    import os

    from genimg.training.gan import GanTrainer
    from genimg.training.loop import fit

    root = tmp_path_factory.mktemp("gan-run")
    old = {k: os.environ.get(k) for k in ("GENIMG_DATA_DIR",)}
    os.environ["GENIMG_DATA_DIR"] = str(data_dir)  # the index of runs (trackio's folder is the process's: conftest)
    try:
        trainer = GanTrainer(steps=12, batch_size=4, config="tiny", n_data=8, data_dir=root / "data", eval_every=6,
                             eval_minutes=0, log=lambda *_: None)
        trainer.eval_limit = 8
        result = fit(trainer, root / "run")
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return root / "run", result


def test_tensorboard_event_files_hold_losses_evaluations_and_samples(gan_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = gan_run
    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss/d", "loss/g", "loss/d_margin", "time/step_seconds", "time/images_per_s"} <= scalars
    assert {"eval/single_colour_bg", "eval/single_colour_bg_shape", "eval/diversity"} <= scalars
    assert [e.step for e in events.Scalars("eval/diversity")] == [6, 12]
    assert [e.step for e in events.Scalars("loss/g")] == [10, 12]
    assert "samples" in events.Tags()["images"]


def test_the_trackio_run_holds_the_same_records(gan_run):
    from trackio.utils import TRACKIO_DIR  # fixed by trackio at import (conftest points it at a temp folder)

    from genimg.training.loop import run_name

    run_dir, _ = gan_run
    database = TRACKIO_DIR / "genimg.db"
    assert database.exists()
    with sqlite3.connect(database) as db:
        rows = db.execute("select step, metrics from metrics where run_name = ?", (run_name("gan", run_dir),)).fetchall()
    keys = set().union(*(json.loads(m).keys() for _, m in rows))
    assert {"loss/d", "loss/g", "eval/diversity", "eval/single_colour_bg", "samples"} <= keys
    assert {step for step, _ in rows} >= {6, 10, 12}


def test_runs_lists_the_run_with_its_last_metrics(gan_run, data_dir):
    run_dir, _ = gan_run
    done = subprocess.run([sys.executable, "-m", "genimg", "runs", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "GENIMG_DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert len(runs) == 1
    row = runs[0]
    assert row["dir"] == str(run_dir.resolve()) and row["model"] == "gan" and row["status"] == "finished"
    assert row["step"] == 12 and set(row["losses"]) >= {"d", "g"} and "diversity" in row["eval"]
    assert row["samples"] == 2 and row["best"]["metric"] == "single_colour_bg_shape"


def test_the_best_checkpoint_is_kept_and_exported_on_request(gan_run):
    run_dir, result = gan_run
    best = json.loads((run_dir / "best" / "best.json").read_text())
    evals = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    top = max(e["single_colour_bg_shape"] for e in evals)
    assert best["value"] == top and best["step"] == next(e["step"] for e in evals if e["single_colour_bg_shape"] == top)
    assert (run_dir / "best" / "state.json").exists() and result.best == run_dir / "best"
    assert result.summary()["best_checkpoint"] == str(run_dir / "best")


def test_the_collapse_alarm_fires_on_a_collapsed_generator_and_not_on_a_healthy_one(tmp_path):
    import torch

    from genimg.training.gan import GanTrainer

    trainer = GanTrainer(steps=1, batch_size=4, config="tiny", n_data=8, data_dir=tmp_path / "data",
                         log=lambda *_: None)
    trainer.eval_limit = 4
    (tmp_path / "run").mkdir()
    trainer.setup(tmp_path / "run", None)
    healthy = trainer.evaluate()
    assert healthy["diversity"] > trainer.collapse_threshold and healthy["alerts"] == []
    with torch.no_grad():  # a deliberately collapsed generator: it ignores its noise (all weights zero)
        for p in trainer.ema.model.parameters():
            p.zero_()
    collapsed = trainer.evaluate()
    assert collapsed["diversity"] < 0.001
    assert collapsed["near_duplicates"] == 1.0  # every image has a near-duplicate
    assert healthy["near_duplicates"] < 1.0
    assert [a["title"] for a in collapsed["alerts"]] == ["mode collapse"]
    assert "draws (nearly) the same image whatever the seed" in collapsed["alerts"][0]["text"]


def test_an_alarm_reaches_the_log_the_run_folder_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from genimg.training.tracking import open_run

    said = []
    run = open_run(tmp_path, "alarm-test", {}, names=["files", "tensorboard"], say=said.append)
    run.alert(7, "mode collapse", "diversity 0.010 < 0.040")
    run.close()
    assert said == ["ALARM at step 7: mode collapse: diversity 0.010 < 0.040"]
    assert json.loads((tmp_path / "alerts.jsonl").read_text())["title"] == "mode collapse"
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert "alerts" in " ".join(events.Tags().get("tensors", []))


def test_an_unknown_tracker_is_a_clear_error(tmp_path):
    from genimg.errors import GenimgError
    from genimg.training.tracking import open_run

    with pytest.raises(GenimgError, match="unknown tracker wandb: use files, tensorboard, trackio"):
        open_run(tmp_path, "x", {}, names=["wandb"])


@pytest.mark.browser
def test_the_training_tab_lists_the_run_with_curves_samples_and_alarms(gan_run, data_dir, tmp_path_factory,
                                                                        artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    from tests.conftest import ServedApp
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
    from tests.test_browser_walkthrough import VIEWPORT

    run_dir, _ = gan_run
    # An alarm to show (as the collapse check writes it), so the screenshot shows what a person would see.
    with (run_dir / "alerts.jsonl").open("a") as f:
        f.write(json.dumps({"step": 12, "title": "mode collapse", "text": "diversity across 8 seeds 0.012 < 0.040: "
                            "the generator draws (nearly) the same image whatever the seed"}) + "\n")
    app = ServedApp(tmp_path_factory.mktemp("training-app"), {"GENIMG_DATA_DIR": str(data_dir)})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(60_000)
            page.goto(app.url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="Training").click()
            expect(page.locator("#training-table")).to_contain_text(run_dir.name)
            expect(page.locator("#training-alarms")).to_contain_text("mode collapse")
            expect(page.locator("#training-losses canvas, #training-losses svg").first).to_be_visible()
            expect(page.locator("#training-evals canvas, #training-evals svg").first).to_be_visible()
            image = page.locator("#training-samples img")
            expect(image).to_be_visible()
            assert image.evaluate("img => img.naturalWidth") > 0
            for plot in ("#training-losses", "#training-evals"):
                _wait_for_lines(page, plot)
            # Side by side (here the run with itself: its series get a "run: " prefix) the curves are still drawn.
            # Gradio kept the first colour domain and drew axes and a legend without lines (a bug seen here).
            page.locator("#training-other input").click()
            page.get_by_role("option").filter(has_text=run_dir.name).first.click()
            expect(page.locator("#training-other-samples img")).to_be_visible()
            for plot in ("#training-losses", "#training-evals"):
                _wait_for_lines(page, plot)
            page.screenshot(path=str(artifacts_dir / "training-tab.png"), full_page=True)
            browser.close()
    finally:
        app.close()


def _wait_for_lines(page, selector: str, timeout_s: float = 60.0) -> None:
    """Wait until the plot at ``selector`` shows coloured curves: at least 400 saturated pixels above the
    legend (a plot with axes and a legend but no lines has none there; one flat line across is ~800)."""
    import io
    import time

    import numpy as np
    from PIL import Image

    deadline, count = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        rgb = np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")).astype(int)
        above_legend = rgb[: int(rgb.shape[0] * 0.8)]
        count = int(((above_legend.max(axis=2) - above_legend.min(axis=2)) > 60).sum())
        if count >= 400:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{selector} drew no curves ({count} coloured pixels)")


def test_the_shipped_gan_and_vae_are_not_collapsed_and_seeds_draw_different_images():
    from genimg.models.pool import ModelPool
    from genimg.training.evaluation import collapse_check
    from genimg.training.onestep import COLLAPSE_THRESHOLD

    # The GAN shipped before issue #18 measured 0.032 here and raised the alarm; the diffusion model 0.143.
    pool = ModelPool()
    for model_id in ("genimg-gan", "genimg-vae"):
        with pool.acquire(model_id) as lease:
            check = collapse_check(lease.model, COLLAPSE_THRESHOLD, steps=1, guidance=0.0)
        assert check["diversity"] > 2 * COLLAPSE_THRESHOLD and not check["alerts"], (model_id, check)
        assert check["near_duplicates"] <= 0.25, (model_id, check)


def test_train_json_prints_one_json_object_with_every_tracker_on(tmp_path):
    import os

    env = {**os.environ, "GENIMG_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    env.pop("TRACKIO_DIR", None)
    done = subprocess.run([sys.executable, "-m", "genimg", "train", "--json", "gan", "--out", str(tmp_path / "run"),
                           "--config", "tiny", "--steps", "3", "--n-data", "8", "--batch-size", "4", "--data-dir",
                           str(tmp_path / "gdata"), "--no-export", "--eval-minutes", "0"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["summary"]["steps"] == 3   # trackio's banners went to stderr
    assert (tmp_path / "data" / "trackio" / "genimg.db").exists()  # trackio under the data folder by default


def test_a_run_whose_trainer_was_killed_shows_as_stopped_and_each_run_shows_its_own_headline(tmp_path, monkeypatch):
    from genimg.tasks.runs import runs_table
    from genimg.training.runs import list_runs, record_run, this_host

    monkeypatch.setenv("GENIMG_DATA_DIR", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / "eval.jsonl").write_text(json.dumps({"step": 5, "single_emoji": 0.25}) + "\n")
    record_run(tmp_path / "killed", model="emoji", name="killed", status="running", pid=dead.pid, host=this_host(),
               headline="single_emoji")
    (tmp_path / "alive").mkdir()
    record_run(tmp_path / "alive", model="gan", name="alive", status="running", pid=__import__("os").getpid(),
               host=this_host())
    status = {run["name"]: run["status"] for run in list_runs()}
    assert status == {"killed": "stopped", "alive": "running"}
    rows = {row[0]: row for row in runs_table()[0]}
    assert rows["killed"][4:6] == [0.25, "right emoji"]
    assert rows["alive"][5] == "colour+bg+shape"


def test_side_by_side_pairs_each_checkpoint_with_the_other_runs_nearest_step():
    from genimg.tasks.runs import nearest_sample

    other = [(500, "a.png"), (1000, "b.png"), (2000, "c.png")]
    assert nearest_sample(other, 1000) == (1000, "b.png")
    assert nearest_sample(other, 1400) == (1000, "b.png")   # not the third grid of a run that saved more often
    assert nearest_sample(other, 1500) == (1000, "b.png")   # a tie goes to the earlier step
    assert nearest_sample(other, 9000) == (2000, "c.png")
    assert nearest_sample([], 100) is None


def test_side_by_side_curves_keep_each_metrics_hue_strong_for_the_first_run_light_for_the_second():
    from genimg.ui.training_tab import PALETTE, _colours

    points = [{"series": s} for s in ("gan-a: loss/d", "gan-a: loss/g", "gan-b: loss/d", "gan-b: loss/g")]
    colours = _colours(points)
    assert colours["gan-a: loss/d"] == PALETTE[0][0] and colours["gan-b: loss/d"] == PALETTE[0][1]
    assert colours["gan-a: loss/g"] == PALETTE[1][0] and colours["gan-b: loss/g"] == PALETTE[1][1]
    assert _colours([{"series": "loss/d"}, {"series": "loss/g"}]) == {"loss/d": PALETTE[0][0], "loss/g": PALETTE[1][0]}
