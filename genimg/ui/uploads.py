"""Every file a visitor gives the dashboard passes genimg's gate before anything decodes it.

Gradio decodes uploads itself before an event handler runs (``gr.Image`` opens the file,
``gr.ImageEditor`` decodes every layer), and a refusal there surfaces as Gradio's raw
"Could not preprocess input component at index 0 ..." text with server paths. So the
image inputs of every tab are the two components below, whose ``preprocess`` first runs
:func:`genimg.imageio.load_image` (header checked before any pixel is decoded; see
:func:`genimg.imageio.guard_decoders` for the process-wide bound under it) and raises
``gr.Error`` with our sentence. :func:`refuse_at_upload` adds the same check the moment a
file lands: a toast and the input cleared, so a refused file never looks accepted.
Text uploads (Evaluate's prompts file) go through :func:`check_text_upload`.

This module is written by hand: Gradio has no hook for validating an upload before its
own preprocessing.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from genimg.config import settings
from genimg.errors import GenimgError
from genimg.imageio import load_image
from genimg.resources import check_headroom

log = logging.getLogger("genimg.ui")

_VERDICTS: OrderedDict[tuple[str, int, int], str | None] = OrderedDict()
_VERDICTS_LOCK = threading.Lock()
_MAX_VERDICTS = 512


def _what(component: Any) -> str:
    """How a message names the input: its label as the visitor reads it ("content image")."""
    label = re.split(r"[(:]", str(getattr(component, "label", None) or "image"))[0]
    label = re.sub(r"^[….\s]*(or an? )?", "", label).strip()
    return (label[:1].lower() + label[1:]) if label else "image"


def _source(payload: Any) -> str | bytes | None:
    """The uploaded file behind a Gradio file payload (FileData, dict, bytes or data: URL)."""
    if payload is None:
        return None
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    get = payload.get if isinstance(payload, dict) else (lambda key: getattr(payload, key, None))
    url = get("url") or ""
    if isinstance(url, str) and url.startswith("data:") and not get("path"):
        encoded = url.partition(",")[2]
        limit = settings().limits.max_upload_bytes
        if len(encoded) > limit * 4 // 3 + 16:
            raise GenimgError(f"the upload is larger than the {limit / 2**20:.0f} MB limit here")
        try:
            return base64.b64decode(encoded, validate=False)
        except (binascii.Error, ValueError):
            raise GenimgError("the upload is not valid base64 image data") from None
    path = get("path")
    return str(path) if path else None


def verdict(source: str | bytes, what: str) -> str | None:
    """None when the gate accepts ``source`` (a path or bytes), else the refusal, in plain words.

    Paths are remembered by (path, size, mtime), so checking at upload and again on Run
    decodes the file once.
    """
    key = None
    if isinstance(source, str):
        try:
            stat = os.stat(source)
        except OSError:
            return f"the {what} upload is no longer on the server (uploads expire after an hour): upload it again"
        key = (source, stat.st_size, stat.st_mtime_ns)
        with _VERDICTS_LOCK:
            if key in _VERDICTS:
                _VERDICTS.move_to_end(key)
                return _VERDICTS[key]
    try:
        load_image(source if isinstance(source, bytes) else Path(source), what=what)
        answer = None
    except GenimgError as exc:
        answer = str(exc)
    except Exception:  # the gate maps every decoding failure; anything else is our bug, not the visitor's file
        log.exception("the image gate failed on an upload")
        answer = f"{what} could not be read: use PNG, JPEG, WebP, BMP, TIFF or GIF"
    if key is not None:
        with _VERDICTS_LOCK:
            _VERDICTS[key] = answer
            while len(_VERDICTS) > _MAX_VERDICTS:
                _VERDICTS.popitem(last=False)
    return answer


def gate(payload: Any, what: str) -> None:
    """Raise gr.Error with our sentence unless the file in ``payload`` passes the image gate."""
    try:
        check_headroom(f"reading the {what}")
        source = _source(payload)
    except GenimgError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    if source is None:
        return
    refusal = verdict(source, what)
    if refusal is not None:
        raise gr.Error(refusal, print_exception=False)


class GatedImage(gr.Image):
    """``gr.Image`` whose preprocessing runs genimg's image gate first (UI and API alike)."""

    is_template = True  # the browser renders it as a plain gr.Image

    def check(self, payload: Any) -> None:
        """Raise gr.Error with our sentence unless the uploaded file passes the gate."""
        gate(payload, _what(self))

    def preprocess(self, payload: Any) -> Any:
        self.check(payload)
        return super().preprocess(payload)


class GatedImageEditor(gr.ImageEditor):
    """``gr.ImageEditor`` whose background, layers and composite all pass the image gate first."""

    is_template = True

    def _files(self, payload: Any) -> list[Any]:
        if payload is None:
            return []
        blob_id = getattr(payload, "id", None) if not isinstance(payload, dict) else payload.get("id")
        if blob_id is not None:
            cached = self.blob_storage.get(blob_id)
            if cached is None:
                return []
            return [cached.background, *(cached.layers or []), cached.composite]
        get = payload.get if isinstance(payload, dict) else (lambda key: getattr(payload, key, None))
        return [get("background"), *(get("layers") or []), get("composite")]

    def check(self, payload: Any) -> None:
        """Raise gr.Error with our sentence unless every image in the editor passes the gate."""
        what = _what(self)
        for item in self._files(payload):
            gate(item, what)

    def preprocess(self, payload: Any) -> Any:
        self.check(payload)
        return super().preprocess(payload)

    def forget(self, payload: Any) -> None:
        """Drop the in-memory blobs of ``payload`` (what preprocessing would have done)."""
        blob_id = payload.get("id") if isinstance(payload, dict) else None
        if blob_id is not None:
            self.blob_storage.pop(blob_id, None)


def _check_now(component: Any) -> Callable[[Any], Any]:
    def check_upload(payload: Any) -> Any:
        try:
            component.check(payload)
        except gr.Error as exc:
            gr.Warning(exc.message, title="Not accepted")
            return None  # clear the input: a refused file must not look accepted
        finally:
            if isinstance(component, GatedImageEditor):
                component.forget(payload)  # preprocessing did not run, so nothing else frees its blobs
        return gr.skip()

    return check_upload


def refuse_at_upload(*components: Any) -> None:
    """Check each gated component's file the moment it is uploaded: a toast and a cleared input if refused.

    ``components``: GatedImage, GatedImageEditor or GatedTextFile instances.
    """
    for component in components:
        component.upload(_check_now(component), component, component, preprocess=False, api_name=False,
                         show_progress="hidden", concurrency_limit=4)


def check_text_upload(payload: Any, what: str = "prompts file", max_bytes: int = 1 << 20) -> None:
    """Raise gr.Error unless ``payload`` is a UTF-8 text file of at most ``max_bytes``."""
    source = _source(payload)
    if source is None:
        return
    try:
        if isinstance(source, str):
            size = os.stat(source).st_size
            if size > max_bytes:
                raise GenimgError(f"{what} is {size / 2**10:.0f} KB; the limit is {max_bytes / 2**10:.0f} KB")
            with open(source, "rb") as handle:
                data = handle.read(max_bytes + 1)
        else:
            data = source
        if len(data) > max_bytes:
            raise GenimgError(f"{what} is larger than {max_bytes / 2**10:.0f} KB")
        if b"\0" in data:
            raise GenimgError(f"{what} is a binary file, not text: upload a .txt file with one prompt per line")
        try:
            data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise GenimgError(f"{what} is not UTF-8 text: save it as UTF-8, one prompt per line") from None
    except OSError:
        raise gr.Error(f"the {what} upload is no longer on the server: upload it again", print_exception=False) from None
    except GenimgError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


class GatedTextFile(gr.File):
    """``gr.File`` for text uploads: size, binary content and encoding checked before use."""

    is_template = True

    def check(self, payload: Any) -> None:
        """Raise gr.Error unless the upload is a small UTF-8 text file."""
        check_text_upload(payload, _what(self))

    def preprocess(self, payload: Any) -> Any:
        self.check(payload)
        return super().preprocess(payload)
