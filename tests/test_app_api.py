"""The dashboard's API through gradio_client against the app served in-process."""

from __future__ import annotations

import pytest
from gradio_client import Client
from PIL import Image

from genimg.outputs import read_record


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def generate(client, prompt="a green star", model="tiny-a", width=None, steps=None, seed=5, batch=2):
    return client.predict(prompt, "", model, width, None, steps, None, "default", seed, batch, api_name="/generate")


def test_api_names(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/generate", "/compare"} <= set(endpoints)


def test_generate_returns_images_with_metadata(client):
    gallery, timing, payload = generate(client)
    assert len(gallery) == 2 and [item["caption"] for item in gallery] == ["seed 5", "seed 6"]
    with Image.open(gallery[0]["image"]) as image:
        assert image.size == (32, 32)
        assert "Seed: 5" in image.info["parameters"]
    assert read_record(gallery[1]["image"])["seed"] == 6
    assert payload["seeds"] == [5, 6] and payload["timings"]["total_s"] > 0
    assert "steps/s" in timing


def test_compare_returns_one_column_per_model(client):
    gallery, table, payload = client.predict("a cat", "", ["tiny-a", "tiny-b"], None, None, None, None, "default",
                                             9, 1, True, api_name="/compare")
    images = gallery["value"] if isinstance(gallery, dict) else gallery
    assert [item["caption"] for item in images] == ["tiny-a · seed 9", "tiny-b · seed 9"]
    assert [row[0] for row in table["data"]] == ["tiny-a", "tiny-b"]
    assert [cell["model"] for cell in payload["cells"]] == ["tiny-a", "tiny-b"]
    assert all(read_record(item["image"])["seed"] == 9 for item in images)


@pytest.mark.parametrize("kwargs, text", [
    (dict(model="nope"), "unknown model 'nope'"),
    (dict(width=0), "width must be between 8 and"),
    (dict(width=100000), "width must be between 8 and"),
    (dict(steps=0), "steps must be between 1 and"),
    (dict(steps=10000), "steps must be between 1 and"),
    (dict(prompt=""), "prompt is empty"),
    (dict(prompt="x" * 100_000), "characters long"),
    (dict(model="missing-hub"), "cannot be loaded here"),
])
def test_bad_input_is_a_clear_error_and_the_server_keeps_serving(client, kwargs, text):
    with pytest.raises(Exception, match=text):
        generate(client, **kwargs)
    gallery, _timing, _payload = generate(client, batch=1)
    assert len(gallery) == 1


def test_a_new_session_config_is_the_same_with_memoised_signatures(shared_pool):
    """genimg.ui.gradio_speedups memoises __init__ signatures for Gradio's per-session config:
    a new session (every REST call without one) must see exactly the config plain ``inspect`` gives."""
    import inspect

    import gradio.blocks
    from gradio.state_holder import SessionState

    from genimg.ui.app import build_app
    from genimg.ui.gradio_speedups import cache_info

    demo = build_app(shared_pool)
    assert gradio.blocks.inspect is not inspect  # installed by build_app
    before = cache_info().hits
    memoised = SessionState(demo).config_values
    assert cache_info().hits > before
    installed, gradio.blocks.inspect = gradio.blocks.inspect, inspect
    try:
        plain = SessionState(demo).config_values
    finally:
        gradio.blocks.inspect = installed
    assert memoised == plain and len(plain) > 100
