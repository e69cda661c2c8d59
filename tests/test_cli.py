"""The CLI contract: --help everywhere, --json output, exit 2 with one `error:` line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genimg.outputs import read_record

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cli_env(tiny_dirs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    catalog = folder / "models.toml"
    entries = []
    for name, path in tiny_dirs.items():
        entries.append(f'''[[model]]
id = "{name}"
name = "{name.upper()}"
backend = "diffusers"
source = "{path}"
tasks = ["text-to-image"]
dtype = "fp32"
default = {"true" if name == "tiny-b" else "false"}
[model.defaults]
width = 32
height = 32
steps = 2
guidance = 4.0
''')
    entries.append('''[[model]]
id = "missing-hub"
backend = "diffusers"
source = "genimg-tests/does-not-exist"
tasks = ["text-to-image"]
''')
    catalog.write_text("\n".join(entries))
    env = dict(os.environ, GENIMG_CATALOG=str(catalog), GENIMG_OUTPUT_DIR=str(folder / "out"), HF_HUB_OFFLINE="1")
    return env


def run(env, *args):
    return subprocess.run([sys.executable, "-m", "genimg", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def assert_user_error(proc, text):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line, no traceback
    assert lines[0].startswith("error: ") and text in lines[0], lines[0]


def test_every_command_has_help(cli_env):
    for command in ("models", "generate", "compare", "bench"):
        proc = run(cli_env, command, "--help")
        assert proc.returncode == 0 and "usage:" in proc.stdout


def test_models_lists_availability(cli_env):
    proc = run(cli_env, "models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["id"]: row for row in json.loads(proc.stdout)["models"]}
    assert rows["tiny-a"]["available"] and rows["tiny-b"]["available"]
    assert not rows["missing-hub"]["available"] and "huggingface-cli download" in rows["missing-hub"]["reason"]


def test_generate_json_writes_pngs_with_parameters(cli_env):
    proc = run(cli_env, "generate", "--prompt", "a blue square", "--seed", "3", "--batch", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"]["id"] == "tiny-b"  # the catalog's default
    assert out["seeds"] == [3, 4] and out["params"]["steps"] == 2 and out["timings"]["total_s"] > 0
    assert len(out["outputs"]) == 2
    from PIL import Image

    with Image.open(out["outputs"][1]) as image:
        assert image.size == (32, 32)
        params = image.info["parameters"]
    assert params.splitlines()[0] == "a blue square"
    # The tiny pipeline ships an Euler scheduler: the real name, never "Default"; the catalog id, not the name.
    assert "Steps: 2, Sampler: Euler, CFG scale: 4.0, Seed: 4, Size: 32x32, Model hash: " in params
    assert ", Model: tiny-b, Version: genimg " in params
    record = read_record(out["outputs"][1])
    assert record["seed"] == 4 and record["model"]["id"] == "tiny-b" and record["prompt"] == "a blue square"


def test_compare_json(cli_env):
    proc = run(cli_env, "compare", "--models", "tiny-a", "tiny-b", "--prompt", "a cat", "--seed", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    cells = json.loads(proc.stdout)["cells"]
    assert [c["model"] for c in cells] == ["tiny-a", "tiny-b"]
    assert all(c["wall_s"] > 0 and len(c["outputs"]) == 1 for c in cells)


@pytest.mark.parametrize("args, text", [
    (["generate", "--prompt", "x", "--model", "nope"], "unknown model 'nope'"),
    (["generate", "--prompt", "x", "--width", "0"], "width must be between"),
    (["generate", "--prompt", "x", "--steps", "10000"], "steps must be between"),
    (["generate", "--prompt", ""], "prompt is empty"),
    (["generate", "--prompt", "x", "--model", "missing-hub"], "not in the Hugging Face cache"),
    (["generate"], "--prompt"),
    (["generate", "--prompt", "x", "--width", "wide"], "invalid int value"),
    (["compare", "--models", "tiny-a", "--prompt", "x"], "at least 2 models"),
    (["frobnicate"], "invalid choice"),
])
def test_user_errors_exit_2_with_one_line(cli_env, args, text, monkeypatch, capsys):
    # In-process (same code as `python -m genimg`, without paying interpreter start-up per case).
    from genimg.cli import main
    from genimg.models.pool import set_pool

    for key in ("GENIMG_CATALOG", "GENIMG_OUTPUT_DIR"):
        monkeypatch.setenv(key, cli_env[key])
    set_pool(None)
    try:
        with pytest.raises(SystemExit) as exit_info:
            raise SystemExit(main(args))
    finally:
        set_pool(None)
    captured = capsys.readouterr()
    assert_user_error(subprocess.CompletedProcess(args, exit_info.value.code, captured.out, captured.err), text)


def test_user_error_in_a_real_process(cli_env):
    assert_user_error(run(cli_env, "generate", "--prompt", "x", "--model", "nope"), "unknown model 'nope'")
