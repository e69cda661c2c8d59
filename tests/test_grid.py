"""Parameter grids: axes and their errors, the labelled image, cells equal to plain generations, the CLI and /grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genimg.config import HOSTED_LIMITS, Limits
from genimg.errors import GenimgError
from genimg.grid import compose_grid, make_axis, parse_axis, plan_cells, run_order
from genimg.tasks.generate import GenerateRequest, generate
from genimg.tasks.grid import run_grid

ROOT = Path(__file__).resolve().parent.parent
LIMITS = Limits()


# -- axes and the plan ----------------------------------------------------------------------------------------


def test_parse_axis_kinds_aliases_and_quoting():
    assert parse_axis("steps=4, 8,20", LIMITS).values == (4, 8, 20)
    assert parse_axis("cfg=1.5,7", LIMITS).kind == "guidance"
    assert parse_axis("sampler=euler_a,DDIM", LIMITS).values == ("euler_a", "ddim")
    assert parse_axis("size=64x64,96", LIMITS).values == ((64, 64), (96, 96))
    axis = parse_axis('prompt=red circle,"blue square, small"', LIMITS)
    assert axis.kind == "prompt" and axis.values == ("red circle", "blue square, small")
    assert axis.overrides(1, "a red circle on white") == {"prompt": "a blue square, small on white"}
    assert parse_axis("negative=,blurry", LIMITS).values == ("", "blurry")


@pytest.mark.parametrize("text, words", [
    ("steps", "must look like kind=value1,value2"),
    ("colour=red,blue", "unknown grid axis 'colour'"),
    ("steps=4,eight", "steps must be a whole number, got 'eight'"),
    ("steps=0,4", "steps must be between 1 and 200, got 0"),
    ("guidance=nan", "guidance must be a finite number"),
    ("scheduler=euler,warp", "unknown scheduler 'warp'"),
    ("size=64x65000", "size height must be between 8 and 2048"),
    ("seed=", "the seed axis has no values"),
    ("steps=4,4", "repeats a value"),
])
def test_bad_axes_say_what_is_wrong(text, words):
    with pytest.raises(GenimgError, match=words):
        parse_axis(text, LIMITS)


def test_plan_orders_cells_and_enforces_limits():
    x, y = parse_axis("steps=4,8,20", LIMITS), parse_axis("model=b,a", LIMITS)
    cells = plan_cells("p", [x, y], LIMITS)
    assert [(c.x, c.y, c.z) for c in cells] == [(0, 0, 0), (1, 0, 0), (2, 0, 0), (0, 1, 0), (1, 1, 0), (2, 1, 0)]
    assert cells[4].overrides == {"steps": 8, "model": "a"} and cells[4].label == "steps 8, a"
    assert [c.index for c in run_order(cells, "base")] == [0, 1, 2, 3, 4, 5]  # grouped by model already
    mixed = plan_cells("p", [parse_axis("model=a,b", LIMITS), parse_axis("seed=1,2", LIMITS)], LIMITS)
    assert [c.overrides["model"] for c in run_order(mixed, "base")] == ["a", "a", "b", "b"]  # each model loads once
    with pytest.raises(GenimgError, match="two grid axes vary steps"):
        plan_cells("p", [x, parse_axis("steps=1,2", LIMITS)], LIMITS)
    with pytest.raises(GenimgError, match="'cat' .* is not in the prompt"):
        plan_cells("a dog", [parse_axis("prompt=cat,cow", LIMITS)], LIMITS)
    with pytest.raises(GenimgError, match="needs an X axis"):
        plan_cells("p", [None, x], LIMITS)
    big = [make_axis("seed", list(range(4)), LIMITS), make_axis("steps", [1, 2, 3, 4], LIMITS)]
    assert len(plan_cells("p", big, LIMITS)) == 16
    with pytest.raises(GenimgError, match="4 x 4 = 16 cells; the limit here is 12"):
        plan_cells("p", big, HOSTED_LIMITS)


def test_compose_grid_draws_labels_tiles_and_failed_cells():
    red, blue = Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64), "blue")
    grid = compose_grid([[red, blue], [None, red]], ["steps 4", "steps 8"], ["model a", "model b"], title="seed 1")
    assert grid.mode == "RGB"
    pixels = np.asarray(grid)
    # Tiles are enlarged by a whole factor (64 -> 192, nearest): every pure-red pixel block is a tile.
    red_mask = (pixels == [255, 0, 0]).all(axis=2)
    assert red_mask.sum() == 2 * 192 * 192
    blue_mask = (pixels == [0, 0, 255]).all(axis=2)
    rows, cols = np.nonzero(blue_mask)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (192, 192)
    assert ((pixels == [200, 200, 200]).all(axis=2)).sum() > 150 * 150  # the failed cell's grey tile
    header = pixels[: rows.min() - 4]  # above the first row of tiles: the title and column labels
    assert (header < 100).all(axis=2).sum() > 100  # dark text drawn there
    left = pixels[:, : cols.min() - 200]  # left of the first column: the row labels
    assert (left < 100).all(axis=2).sum() > 100


# -- running grids on the tiny pipelines ----------------------------------------------------------------------


def test_grid_cells_equal_plain_generations_and_share_the_encoding(pool):
    request = GenerateRequest(prompt="a green star", model="tiny-a", seed=11)
    axes = [parse_axis("steps=1,2,3", LIMITS), parse_axis("model=tiny-a,tiny-b", LIMITS)]
    seen = []
    result = run_grid(request, axes, pool, progress=lambda p: seen.append(p.describe()))
    assert len(result.cells) == 6 and result.seed == 11
    assert seen[-1] == "6/6 done" and any(s.startswith("1/6 steps 1, tiny-a") for s in seen)
    for cell in result.cells:
        assert cell.result is not None and cell.image.size == (32, 32)
        # Sharing the prompt encoding changes nothing: each cell is the image generate() gives alone.
        alone = generate(GenerateRequest(prompt="a green star", model=cell.planned.overrides["model"],
                                         steps=cell.planned.overrides["steps"], seed=11), pool)
        assert np.array_equal(np.asarray(cell.image), np.asarray(alone.images[0])), cell.planned.label
    rows = [c.summary() for c in result.cells]
    # The warm-up encoded each model's prompt; every timed cell reused it (no text-encoder time).
    assert all(r["encode_reused"] and r["text_encode_s"] < 0.005 for r in rows), rows
    assert all(r["wall_s"] > 0 and r["steps_per_s"] > 0 and "peak_memory_mb" in r for r in rows)
    assert [r["steps"] for r in rows] == [1, 2, 3, 1, 2, 3] and rows[0]["sampler"] == "Euler"
    assert len(result.grids) == 1 and result.grids[0].width > 3 * 192


def test_grid_without_warmup_encodes_once_per_model_and_prompt(pool):
    request = GenerateRequest(prompt="a blue square", model="tiny-b", seed=3)
    axes = [parse_axis("seed=1,2", LIMITS), parse_axis("negative=,dark", LIMITS)]
    rows = [c.summary() for c in run_grid(request, axes, pool, warmup=False).cells]
    # (prompt, negative) pairs: cell 0 encodes ("", first seed), cell 1 reuses it; cell 2 encodes "dark", 3 reuses.
    assert [r["encode_reused"] for r in rows] == [False, True, False, True], rows
    assert rows[0]["text_encode_s"] > 0 and rows[1]["text_encode_s"] < rows[0]["text_encode_s"]


def test_a_cell_that_cannot_run_is_a_row_and_a_grey_tile(pool):
    axes = [parse_axis("model=tiny-a,missing-hub", LIMITS)]
    result = run_grid(GenerateRequest(prompt="a cat", model="tiny-a", seed=1), axes, pool)
    ok, failed = result.cells
    assert ok.result is not None and failed.result is None and "missing-hub" in failed.summary()["error"]
    assert np.asarray(result.grids[0]).min() < 255
    with pytest.raises(GenimgError, match="unknown model 'nope'"):
        run_grid(GenerateRequest(prompt="a cat", model="tiny-a"), [parse_axis("model=tiny-a,nope", LIMITS)], pool)
    with pytest.raises(GenimgError, match="prompt is empty"):
        run_grid(GenerateRequest(prompt=" ", model="tiny-a"), [parse_axis("steps=1,2", LIMITS)], pool)


def test_a_routed_model_runs_its_cells_in_its_replica(pool, tiny_catalog):
    """Under serve --ray a model's cells run where its route sends them (tests/test_routes.py's PoolRoute)."""
    from genimg.models.pool import ModelPool
    from tests.test_routes import PoolRoute

    serving = ModelPool(dict(tiny_catalog), budget_bytes=1 << 34, served_by=lambda: {"id": "r1", "node": "n1"})
    route = PoolRoute("tiny-b", serving, own_device=False)
    pool.set_route("tiny-b", route)
    axes = [parse_axis("steps=1,2", LIMITS), parse_axis("model=tiny-a,tiny-b", LIMITS)]
    result = run_grid(GenerateRequest(prompt="a red circle", model="tiny-a", seed=3), axes, pool)
    assert [task for task, _ in route.calls] == ["compare_cell", "compare_cell"]
    rows = [c.summary() for c in result.cells]
    assert [r.get("replica", {}).get("id") for r in rows] == [None, None, "r1", "r1"]
    alone = generate(GenerateRequest(prompt="a red circle", model="tiny-b", steps=2, seed=3), serving)
    assert np.array_equal(np.asarray(result.cells[3].image), np.asarray(alone.images[0]))


# -- the CLI and the API --------------------------------------------------------------------------------------


def run_cli(env, *args):
    return subprocess.run([sys.executable, "-m", "genimg", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_cli_grid_over_steps_and_the_two_embedded_diffusion_models(tmp_path):
    """The issue's done-when: a 3x2 grid over steps x genimg-diffusion / genimg-fewstep from the CLI."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = run_cli(env, "grid", "--prompt", "a red circle", "--x", "steps=2,4,8",
                   "--y", "model=genimg-diffusion,genimg-fewstep", "--seed", "5", "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["seed"] == 5 and [a["kind"] for a in out["axes"]] == ["steps", "model"]
    assert len(out["cells"]) == 6
    for cell in out["cells"]:
        with Image.open(cell["image"]) as image:
            assert image.size == (64, 64) and f"Seed: 5" in image.info["parameters"]
            assert f"Steps: {cell['steps']}" in image.info["parameters"]
        assert {"wall_s", "load_s", "warmup_s", "text_encode_s", "denoise_s", "decode_s"} <= set(cell)
        assert cell["sampler"] == {"genimg-diffusion": "DPM++ 2M", "genimg-fewstep": "LCM"}[cell["model"]]
    assert "grid" in Path(out["grid"]).name
    with Image.open(out["grid"]) as grid:
        assert grid.width > 3 * 192 and grid.height > 2 * 192
        assert json.loads(grid.info["genimg-grid"])["axes"] == out["axes"]
    proc = run_cli(env, "info", out["grid"])  # the grid itself points to its cells' PNGs
    assert proc.returncode == 2 and "each cell's own PNG" in proc.stderr, proc.stderr
    proc = run_cli(env, "info", out["cells"][4]["image"], "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["generate"] == {
        "prompt": "a red circle", "negative_prompt": "", "model": "genimg-fewstep", "width": 64, "height": 64,
        "steps": 4, "guidance": 0.0, "scheduler": "default", "seed": 5}


def test_cli_grid_user_errors(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", GENIMG_HOSTED="1")
    for args, words in ((("--x", "steps=1,two"), "steps must be a whole number"),
                        (("--x", "seed=" + ",".join(str(i) for i in range(13))), "the limit here is 12"),
                        (("--x", "model=genimg-diffusion,nope"), "unknown model 'nope'")):
        proc = run_cli(env, "grid", "--prompt", "a red circle", "--out", str(tmp_path), *args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("error: ") and words in proc.stderr, proc.stderr


def test_api_grid_and_info(app_url, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert [p["parameter_name"] for p in endpoints["/grid"]["parameters"]] == [
        "prompt", "negative_prompt", "model", "x_axis", "x_values", "y_axis", "y_values", "z_axis", "z_values",
        "seed", "warmup"]  # a contract: add, never rename
    assert [p["parameter_name"] for p in endpoints["/info"]["parameters"]] == ["image"]
    grids, rows, cells, payload = client.predict("a cat", "", "tiny-a", "steps", "1,2", "model", "tiny-a,tiny-b",
                                                 "none", "", 4, True, api_name="/grid")
    assert len(payload["cells"]) == 4 and all("wall_s" in c for c in payload["cells"])
    assert len(grids) == 1 and len(cells) == 4 and len(rows.get("value", rows).get("data", [])) == 4, rows
    with Image.open(cells[0]["image"]) as image:
        assert "Sampler: Euler" in image.info["parameters"]
    summary, table, record = client.predict(handle_file(cells[0]["image"]), api_name="/info")
    assert "Written by genimg" in summary and record["seed"] == 4 and record["steps"] == 1
    fixture = ROOT / "tests/data/pnginfo/automatic1111_cropped.png"
    summary, table, record = client.predict(handle_file(str(fixture)), api_name="/info")
    assert "AUTOMATIC1111" in summary and record["model_hash"] == "c0d1994c73"
    plain = tmp_path / "plain.png"
    Image.new("RGB", (16, 16), "white").save(plain)
    summary, _table, record = client.predict(handle_file(str(plain)), api_name="/info")
    assert "no generation parameters found" in summary
