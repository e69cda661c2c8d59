"""The ask contract: ``python -m genimg ask`` (exit codes, one error line, --json) and the API ``/ask``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from genimg.examples import EXAMPLES_DIR

ROOT = Path(__file__).resolve().parent.parent
SCENE = EXAMPLES_DIR / "ask" / "count.png"  # four black stars on white


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.run([sys.executable, "-m", "genimg", "ask", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_cli_json_answer():
    done = run_cli("--image", str(SCENE), "--question", "how many stars are there?", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert (payload["answer"], payload["model"], payload["type"], payload["answerable"]) == (
        "4", "genimg-scene-qa", "count", True)
    assert payload["seconds"] > 0 and payload["command"] == "ask"


def test_cli_plain_answer_and_help():
    done = run_cli("-i", str(SCENE), "-q", "What color is the background?")
    assert (done.returncode, done.stdout.strip()) == (0, "white")
    helped = run_cli("--help")
    assert helped.returncode == 0 and "--question" in helped.stdout and "--json" in helped.stdout


@pytest.mark.parametrize("args, words", [
    (["--question", "what colour?"], "no image given"),
    (["--image", str(SCENE)], "no question given"),
    (["--image", str(SCENE), "--question", ""], "no question given"),
    (["--image", str(SCENE), "--question", "why " * 100], "at most 300 characters"),
    (["--image", str(ROOT / "README.md"), "--question", "what colour is the circle?"], "not an image"),
    (["--image", str(SCENE), "--question", "how many stars?", "--model", "nope"],
     "unknown answerer 'nope': choose one of genimg-scene-qa"),
    (["--image", str(SCENE), "--question", "how many stars?", "--model", "genimg-diffusion"],
     "does not do visual-question-answering"),
    (["--image", str(SCENE), "--question", "how many stars?", "--model", "smolvlm-256m"], "weights missing"),
])
def test_cli_bad_input_is_exit_2_and_one_error_line(args, words):
    done = run_cli(*args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], done.stderr


@pytest.fixture(scope="module")
def ask_url():
    """The dashboard over the shipped catalog's answerers, served in-process."""
    from genimg.models.catalog import load_catalog
    from genimg.models.pool import ModelPool
    from genimg.ui.app import build_app
    from tests.conftest import free_port

    catalog = {k: v for k, v in load_catalog().items() if "visual-question-answering" in v.tasks}
    demo = build_app(ModelPool(catalog))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_api_ask(ask_url):
    client = Client(ask_url, verbose=False)
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/ask"]
    assert [p["parameter_name"] for p in endpoint["parameters"]] == ["image", "question", "model"]
    text, payload = client.predict(handle_file(str(SCENE)), "how many stars are there?", "genimg-scene-qa",
                                   api_name="/ask")
    assert payload["answer"] == "4" and payload["model"] == "genimg-scene-qa" and payload["seconds"] > 0
    assert "**4**" in text


@pytest.mark.parametrize("question, model, words", [
    ("", "genimg-scene-qa", "no question given"),
    ("why " * 100, "genimg-scene-qa", "at most 300 characters"),
    ("how many stars?", "nope", "unknown answerer 'nope'"),
    ("how many stars?", "smolvlm-256m", "weights missing"),
])
def test_api_bad_input_is_a_clear_error(ask_url, question, model, words):
    client = Client(ask_url, verbose=False)
    with pytest.raises(Exception, match=words):
        client.predict(handle_file(str(SCENE)), question, model, api_name="/ask")


def test_api_refuses_a_non_image(ask_url, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    client = Client(ask_url, verbose=False)
    with pytest.raises(Exception, match="not an image|cannot be decoded|is a text file"):
        client.predict(handle_file(str(fake)), "what colour is the circle?", "genimg-scene-qa", api_name="/ask")
