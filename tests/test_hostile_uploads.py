"""Hostile and odd uploads into every API endpoint that takes an image, against the real server.

The server is ``python app.py`` in its own process (``served_app``), so a file that kills it or
balloons its memory shows as exactly that. Refused files must get our plain sentence (what is
wrong and what is accepted) -- never Gradio's "Could not preprocess", a server path, an
exception class or a traceback; accepted odd files must be processed. After every file the
server still answers, and its peak RSS stays bounded.
"""

from __future__ import annotations

import json
import re

import pytest
from gradio_client import Client, handle_file

from tests.hostile_files import ACCEPTED, REFUSED, write_matrix

# What each refused file must be told (our words, from genimg.imageio's gate).
REFUSAL_WORDS = {
    "bomb": "megapixels; the limit here is",
    "empty": "is empty (0 bytes)",
    "text-as-png": "is a text file, not an image",
    "truncated": "damaged or truncated",
    "svg": "SVG (vector) file, which is not accepted",
    "lying-header": "damaged or truncated",
}
# Never in a message a visitor sees.
LEAKS = re.compile(r"Could not preprocess|component at index|Traceback|/tmp/|gradio/|site-packages|"
                   r"UnidentifiedImageError|DecompressionBomb|OSError|ValueError|SyntaxError|Errno")
RSS_CEILING = 6 * 2**30  # the bound for this 24 GB machine
# Accepted files the task itself may refuse, in its own clear words (restoration and style need 8 px a side).
TASK_REFUSALS = {"1x1": "needs at least 8 pixels on each side", "4000x2": "needs at least 8 pixels on each side"}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    return write_matrix(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def client(served_app):
    return Client(served_app.url, verbose=False)


def _restore(client, image, mask=None, spec="noise:25"):
    return client.predict(handle_file(image), spec, ["bilateral"], 0, "auto", mask, "", api_name="/restore")


def _style(client, content, style):
    return client.predict(handle_file(content), handle_file(style), ["reinhard"], 1.0, False, 128, 0, 10, 1.0, 5.0,
                          True, "", None, None, 0, api_name="/style")


def _metrics(client, image, reference=None):
    keys = ["entropy"] if reference is None else ["psnr"]
    return client.predict(handle_file(image), handle_file(reference) if reference else None, keys, True,
                          api_name="/metrics")


GOOD = "rgba"  # the accepted file used in the other slot of two-image endpoints
ENTRY_POINTS = {
    "/restore image": lambda c, f, m: _restore(c, f),
    "/restore mask": lambda c, f, m: _restore(c, str(m[GOOD][0]), {"background": handle_file(f),
                                                                    "layers": [handle_file(f)], "composite": None}),
    "/style content": lambda c, f, m: _style(c, f, str(m[GOOD][0])),
    "/style style": lambda c, f, m: _style(c, str(m[GOOD][0]), f),
    "/metrics image": lambda c, f, m: _metrics(c, f),
    "/metrics reference": lambda c, f, m: _metrics(c, str(m[GOOD][0]), f),
}


def test_every_file_into_every_image_endpoint(served_app, client, matrix, artifacts_dir):
    outcomes = {}
    for entry, call in ENTRY_POINTS.items():
        for case in (*REFUSED, *ACCEPTED):
            path, refused = matrix[case]
            try:
                call(client, str(path), matrix)
                outcome = "processed"
            except Exception as exc:  # gradio_client raises AppError with the server's message
                outcome = str(exc)
            outcomes[f"{entry} <- {case}"] = outcome
            assert served_app.alive(), f"the server died after {case} into {entry}"
            assert not LEAKS.search(outcome), f"{case} into {entry} leaked internals: {outcome}"
            if refused:
                assert REFUSAL_WORDS[case] in outcome, f"{case} into {entry}: {outcome}"
            elif outcome != "processed":
                # The mask slot: an accepted image painted everywhere is refused by the task in plain words.
                allowed = [TASK_REFUSALS.get(case), "the mask covers the whole image"]
                assert any(words and words in outcome for words in allowed), f"{case} into {entry}: {outcome}"
            for words in REFUSAL_WORDS.values():
                if not refused:
                    assert words not in outcome, f"accepted {case} refused by the gate in {entry}: {outcome}"
    (artifacts_dir / "hostile-uploads-api.json").write_text(json.dumps(
        {"peak_server_rss_mb": round(served_app.peak_rss / 2**20), "outcomes": outcomes}, indent=1))
    assert 0 < served_app.peak_rss < RSS_CEILING, f"server peak RSS {served_app.peak_rss / 2**30:.1f} GB"
    processed = [k for k, v in outcomes.items() if v == "processed"]
    assert len(processed) >= 6 * 5, processed  # CMYK, 16-bit, animated, EXIF, palette, RGBA work everywhere


def test_data_url_uploads_pass_the_same_gate():
    """An API client can send an image inline as a data: URL; it meets the same gate as a file."""
    import base64

    import gradio as gr

    from genimg.ui.uploads import GatedImage
    from tests.hostile_files import build_matrix

    component = GatedImage(label="Image to score", type="filepath")
    for case in ("bomb", "text-as-png", "truncated"):
        data = build_matrix()[case][1]
        payload = component.data_model(url="data:image/png;base64," + base64.b64encode(data).decode(), path=None)
        with pytest.raises(gr.Error, match=re.escape(REFUSAL_WORDS[case])):
            component.preprocess(payload)


def test_memory_ceiling_refuses_new_work_with_busy(monkeypatch):
    from genimg.errors import GenimgError
    from genimg.resources import check_headroom, rss_bytes

    monkeypatch.setenv("GENIMG_MAX_RSS_MB", str(max(1, rss_bytes() // 2**20 // 2)))
    with pytest.raises(GenimgError, match="the server is busy .* try again in a minute, or with a smaller image"):
        check_headroom()
    monkeypatch.setenv("GENIMG_MAX_RSS_MB", str(rss_bytes() // 2**20 + 4096))
    check_headroom()


def test_pillow_refuses_bombs_for_every_caller():
    """The process-wide guard: even a library's own Image.open (Gradio's) refuses from the header."""
    import io

    from PIL import Image

    from genimg.imageio import decoder_limit, guard_decoders
    from tests.hostile_files import png_claiming

    from genimg.config import Limits

    try:
        assert guard_decoders(Limits(max_image_pixels=1_000_000)) == 1_000_000
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(png_claiming(1001, 1000, 2)))
        Image.open(io.BytesIO(png_claiming(1000, 1000, 2))).load()  # exactly at the limit: fine
        assert decoder_limit() == 1_000_000
    finally:
        guard_decoders()


def test_per_request_work_is_bounded(monkeypatch):
    """Per-pixel optimisation has its own ceiling; a mask covering everything is refused in plain words."""
    import numpy as np

    from genimg.errors import GenimgError
    from genimg.restore.degrade import as_mask
    from genimg.tasks.style import stylize
    from tests.hostile_files import build_matrix

    content = build_matrix()["rgba"][1]
    with pytest.raises(GenimgError, match="gatys optimises every pixel and takes at most size 1024 here"):
        stylize(content, content, methods=["gatys"], size=2048)
    monkeypatch.setenv("GENIMG_HOSTED", "1")
    with pytest.raises(GenimgError, match="at most size 512 here"):
        stylize(content, content, methods=["gatys"], size=1024)
    with pytest.raises(GenimgError, match="the mask covers the whole image"):
        as_mask(np.full((8, 8), 255, np.uint8), 8, 8)
    with pytest.raises(GenimgError, match="no content image given"):
        stylize(None, content, methods=["reinhard"])
