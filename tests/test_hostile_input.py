"""Property-based checks: random bytes and random parameter values never crash the gate or
the task-level validation with anything but our clear error type, and never hang."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from genimg.errors import GenimgError
from genimg.imageio import load_image
from genimg.models.catalog import ModelSpec
from genimg.restore.degrade import parse_spec
from genimg.tasks.generate import GenerateRequest, resolve_request

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


VALID_PNG = _png(16, 12)


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_give_our_error(data):
    try:
        decoded = load_image(data)
    except GenimgError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert decoded.image.mode == "RGB" and min(decoded.size) >= 1


@FAST
@given(st.integers(0, len(VALID_PNG)), st.binary(min_size=1, max_size=64))
def test_corrupted_png_bytes_decode_or_give_our_error(position, junk):
    data = VALID_PNG[:position] + junk + VALID_PNG[position + len(junk):]
    try:
        decoded = load_image(data)
    except GenimgError:
        return
    assert decoded.image.mode == "RGB"


numbers = st.one_of(st.none(), st.integers(-10**9, 10**9), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.booleans())
SPEC = ModelSpec(id="m", name="m", backend="diffusers", source="x/y", tasks=("text-to-image",),
                 defaults={"width": 64, "height": 64, "steps": 4, "guidance": 5.0})


@FAST
@given(prompt=st.one_of(st.none(), st.text(max_size=200), st.integers()), width=numbers, height=numbers,
       steps=numbers, guidance=numbers, seed=numbers, batch=numbers, scheduler=st.one_of(st.none(), st.text(max_size=10)))
def test_random_generation_parameters_validate_or_give_our_error(prompt, width, height, steps, guidance, seed, batch,
                                                                 scheduler):
    request = GenerateRequest(prompt=prompt, model="m", width=width, height=height, steps=steps, guidance=guidance,
                              seed=seed if seed is not None else -1, batch=batch if batch is not None else 1,
                              scheduler=scheduler)
    try:
        resolved = resolve_request(request, SPEC)
    except GenimgError as exc:
        assert str(exc)
        return
    assert 8 <= resolved["width"] <= 2048 and resolved["width"] % 8 == 0
    assert 1 <= resolved["steps"] <= 200 and 1 <= resolved["batch"] <= 16
    assert math.isfinite(resolved["guidance"]) and resolved["prompt"].strip()


@FAST
@given(st.text(alphabet="noiseblurjpegdownmaskstrkbx:,.0123456789-+ ", max_size=40))
def test_random_degradation_specs_parse_or_give_our_error(spec):
    try:
        ops = parse_spec(spec)
    except GenimgError:
        return
    assert isinstance(ops, list)


@pytest.mark.parametrize("shape, dtype", [((0, 0, 3), np.uint8), ((4, 4, 2), np.uint8), ((4, 4, 3), np.int64),
                                          ((3,), np.uint8)])
def test_odd_arrays_give_our_error(shape, dtype):
    with pytest.raises(GenimgError):
        load_image(np.zeros(shape, dtype))
