"""Parameter grids (A1111's X/Y/Z plot): axes, the cells they span, and the labelled grid image.

Pure functions, no models: :func:`parse_axis` reads ``"steps=4,8,20"``, :func:`plan_cells`
checks the axes together and lists every cell (Z pages of Y rows of X columns) with the
parameters it overrides, and :func:`compose_grid` draws one labelled image per Z value.

Axis kinds (aliases in brackets): ``model``, ``seed``, ``steps``, ``guidance`` [cfg],
``scheduler`` [sampler], ``size`` (``64x64`` or ``64``), ``negative`` [negative_prompt] and
``prompt`` [prompt_sr, sr] -- A1111's prompt search/replace: the first value is the text to find
in the prompt, every value (the first included) replaces it in one column.
Values are comma-separated; quote a value that holds a comma (CSV rules: ``"a, b",c``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Sequence

from PIL import Image, ImageDraw, ImageFont

from genimg.config import Limits
from genimg.errors import GenimgError
from genimg.params import MAX_SEED, check_float, check_int, scheduler_names

# kind -> (label shown in headers and pickers, the GenerateRequest field it sets)
AXIS_KINDS: dict[str, tuple[str, str]] = {
    "model": ("Model", "model"),
    "seed": ("Seed", "seed"),
    "steps": ("Steps", "steps"),
    "guidance": ("CFG", "guidance"),
    "scheduler": ("Scheduler", "scheduler"),
    "size": ("Size", "size"),
    "negative": ("Negative prompt", "negative_prompt"),
    "prompt": ("Prompt S/R", "prompt"),
}
_ALIASES = {"cfg": "guidance", "cfg_scale": "guidance", "sampler": "scheduler", "negative_prompt": "negative",
            "prompt_sr": "prompt", "sr": "prompt", "prompt s/r": "prompt", "checkpoint": "model"}
AXIS_NAMES = ("X", "Y", "Z")


@dataclass(frozen=True)
class Axis:
    """One axis: its kind (a key of AXIS_KINDS) and its values, already checked."""

    kind: str
    values: tuple[Any, ...]

    @property
    def label(self) -> str:
        return AXIS_KINDS[self.kind][0]

    def value_label(self, index: int) -> str:
        """How value ``index`` reads in a header ("steps 8", "64x64", "Euler a", "<empty>")."""
        value = self.values[index]
        if self.kind == "size":
            return f"{value[0]}x{value[1]}"
        if self.kind in ("negative", "prompt"):
            return value if value else "<empty>"
        if self.kind in ("steps", "seed", "guidance"):
            return f"{self.kind} {value:g}" if isinstance(value, float) else f"{self.kind} {value}"
        return str(value)

    def overrides(self, index: int, prompt: str) -> dict[str, Any]:
        """The GenerateRequest fields value ``index`` sets (``prompt`` is the base prompt, for S/R)."""
        value = self.values[index]
        if self.kind == "size":
            return {"width": value[0], "height": value[1]}
        if self.kind == "prompt":
            return {"prompt": prompt.replace(self.values[0], value)}
        return {AXIS_KINDS[self.kind][1]: value}


def axis_kind(name: Any) -> str:
    """The canonical kind for an axis name or alias; GenimgError naming the choices otherwise."""
    key = str(name or "").strip().lower()
    key = _ALIASES.get(key, key)
    if key not in AXIS_KINDS:
        raise GenimgError(f"unknown grid axis {str(name)[:40]!r}: use one of {', '.join(AXIS_KINDS)}")
    return key


def split_values(text: str) -> list[str]:
    """Comma-separated values with CSV quoting ("a, b",c -> ["a, b", "c"]), each stripped."""
    try:
        rows = list(csv.reader(io.StringIO(text.strip()), skipinitialspace=True))
    except csv.Error as exc:
        raise GenimgError(f"grid values {text[:60]!r} cannot be read: {exc}") from None
    if len(rows) > 1:
        raise GenimgError("grid values must be on one line, separated by commas")
    return [v.strip() for v in (rows[0] if rows else [])]


def _size(text: str, limits: Limits) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    width = check_int(w, "size width", 8, limits.max_side)
    height = check_int(h or w, "size height", 8, limits.max_side)
    if width * height > limits.max_pixels:
        raise GenimgError(f"size {width}x{height} is {width * height} pixels; the limit here is {limits.max_pixels}")
    return width, height


def check_value(kind: str, text: str, limits: Limits) -> Any:
    """One axis value of ``kind`` parsed and range-checked; GenimgError naming the axis and value."""
    if kind == "steps":
        return check_int(text, "steps", 1, limits.max_steps)
    if kind == "seed":
        return check_int(text, "seed", 0, MAX_SEED)
    if kind == "guidance":
        return check_float(text, "guidance", 0.0, 30.0)
    if kind == "scheduler":
        name = text.strip().lower()
        if name not in scheduler_names():
            raise GenimgError(f"unknown scheduler {text!r} on the grid: use one of {', '.join(scheduler_names())}")
        return name
    if kind == "size":
        return _size(text, limits)
    if kind == "model":
        if not text.strip():
            raise GenimgError("a model axis value is empty: give catalog ids, e.g. model=genimg-diffusion,genimg-fewstep")
        return text.strip()
    if len(text) > limits.max_prompt_chars or "\x00" in text:
        raise GenimgError(f"a {AXIS_KINDS[kind][0].lower()} value is too long or holds a NUL character")
    return text


def make_axis(kind: Any, values: Any, limits: Limits) -> Axis:
    """An Axis from a kind (or alias) and its values (a comma-separated string or a list)."""
    kind = axis_kind(kind)
    texts = split_values(values) if isinstance(values, str) else [str(v) for v in (values or [])]
    if kind not in ("negative", "prompt"):
        texts = [t for t in texts if t != ""]
    if not texts:
        raise GenimgError(f"the {AXIS_KINDS[kind][0].lower()} axis has no values: list them separated by commas")
    checked = tuple(check_value(kind, t, limits) for t in texts)
    if len(set(checked)) != len(checked):
        raise GenimgError(f"the {AXIS_KINDS[kind][0].lower()} axis repeats a value: each column must differ")
    return Axis(kind, checked)


def parse_axis(text: str, limits: Limits) -> Axis:
    """An Axis from ``"kind=v1,v2,..."`` (the CLI's --x/--y/--z). GenimgError when malformed."""
    kind, sep, values = str(text or "").partition("=")
    if not sep:
        raise GenimgError(f"grid axis {str(text)[:60]!r} must look like kind=value1,value2 (e.g. steps=4,8,20)")
    return make_axis(kind, values, limits)


@dataclass
class PlannedCell:
    """One cell: its position (x, y, z indexes), its label and the request fields it overrides."""

    index: int
    x: int
    y: int
    z: int
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)


def plan_cells(prompt: str, axes: Sequence[Axis | None], limits: Limits) -> list[PlannedCell]:
    """Every cell of the grid spanned by ``axes`` (X, Y, Z; None or missing = a single value), Z-major.

    Raises GenimgError for no X axis, two axes of one kind, a prompt S/R whose search text is
    not in the prompt, or more cells than ``limits.max_grid_cells``.
    """
    axes = list(axes) + [None] * (3 - len(axes))
    if axes[0] is None:
        raise GenimgError("a grid needs an X axis, e.g. steps=4,8,20")
    present = [a for a in axes if a is not None]
    kinds = [a.kind for a in present]
    for kind in set(kinds):
        if kinds.count(kind) > 1:
            raise GenimgError(f"two grid axes vary {AXIS_KINDS[kind][0].lower()}: give each kind one axis")
    for axis in present:
        if axis.kind == "prompt" and axis.values[0] not in prompt:
            raise GenimgError(f"prompt S/R: {axis.values[0]!r} (the first value, the text to replace) "
                              "is not in the prompt")
    counts = [len(a.values) if a is not None else 1 for a in axes]
    total = counts[0] * counts[1] * counts[2]
    if total > limits.max_grid_cells:
        raise GenimgError(f"this grid has {' x '.join(str(c) for c in counts if c > 1) or total} = {total} cells; "
                          f"the limit here is {limits.max_grid_cells}")
    cells = []
    for z in range(counts[2]):
        for y in range(counts[1]):
            for x in range(counts[0]):
                overrides, parts = {}, []
                for axis, i in zip(axes, (x, y, z)):
                    if axis is not None:
                        overrides.update(axis.overrides(i, prompt))
                        parts.append(axis.value_label(i))
                cells.append(PlannedCell(len(cells), x, y, z, ", ".join(parts), overrides))
    return cells


def run_order(cells: Sequence[PlannedCell], base_model: str) -> list[PlannedCell]:
    """The order to run cells in: grouped by model (each model loaded once, its warm cells together),
    grid order within a model. Timings stay fair: cells still run one at a time."""
    first_seen: dict[str, int] = {}
    for cell in cells:
        first_seen.setdefault(cell.overrides.get("model", base_model), cell.index)
    return sorted(cells, key=lambda c: (first_seen[c.overrides.get("model", base_model)], c.index))


# ------------------------------------------------------------------ the grid image


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)  # scalable (Pillow's bundled FreeType font)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int, max_lines: int = 3) -> list[str]:
    """``text`` broken into lines of at most ``width`` pixels (an over-long word is cut with an ellipsis)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(candidate, font=font) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    lines = lines or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] += " …"
    for i, line in enumerate(lines):
        while len(line) > 1 and draw.textlength(line, font=font) > width:
            line = line[:-2] + "…"
        lines[i] = line
    return lines


def compose_grid(images: Sequence[Sequence[Image.Image | None]], column_labels: Sequence[str],
                 row_labels: Sequence[str], title: str = "", min_tile: int = 192) -> Image.Image:
    """One labelled grid image: ``images[row][column]`` under column headers, beside row headers.

    Tiles are the largest image's size, enlarged by a whole factor (nearest neighbour: small
    images stay crisp) to at least ``min_tile`` pixels; a missing image (a failed cell) is a grey
    tile marked "failed". ``title`` (e.g. the Z value) goes above. Returns an RGB image.
    """
    if not images or not images[0]:
        raise GenimgError("a grid needs at least one cell")
    present = [im for row in images for im in row if im is not None]
    tile_w = max((im.width for im in present), default=min_tile)
    tile_h = max((im.height for im in present), default=min_tile)
    scale = max(1, -(-min_tile // max(1, min(tile_w, tile_h))))
    tile_w, tile_h = tile_w * scale, tile_h * scale
    font_px = max(14, min(28, tile_w // 10))
    font, title_font = _font(font_px), _font(font_px + 4)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = font_px + 6
    pad = max(6, font_px // 2)
    head_lines = [_wrap(probe, label, font, tile_w - 2 * pad) for label in column_labels]
    head_h = (max(len(lines) for lines in head_lines) * line_h + 2 * pad) if any(column_labels) else 0
    row_w = 0
    if any(row_labels):
        row_w = min(max(tile_w, 160), max(int(probe.textlength(label, font=font)) for label in row_labels) + 2 * pad)
    row_lines = [_wrap(probe, label, font, max(1, row_w - 2 * pad), max_lines=6) for label in row_labels]
    title_h = (font_px + 4 + 2 * pad) if title else 0
    gap = 4
    cols, rows = len(images[0]), len(images)
    width = row_w + cols * (tile_w + gap) + gap
    height = title_h + head_h + rows * (tile_h + gap) + gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, pad), title, fill="black", font=title_font)
    for c, lines in enumerate(head_lines):
        x0 = row_w + gap + c * (tile_w + gap)
        for i, line in enumerate(lines):
            tw = draw.textlength(line, font=font)
            draw.text((x0 + (tile_w - tw) / 2, title_h + pad + i * line_h), line, fill="black", font=font)
    for r, row in enumerate(images):
        y0 = title_h + head_h + gap + r * (tile_h + gap)
        if r < len(row_lines):
            block = len(row_lines[r]) * line_h
            for i, line in enumerate(row_lines[r]):
                draw.text((pad, y0 + (tile_h - block) / 2 + i * line_h), line, fill="black", font=font)
        for c, image in enumerate(row):
            x0 = row_w + gap + c * (tile_w + gap)
            if image is None:
                draw.rectangle([x0, y0, x0 + tile_w - 1, y0 + tile_h - 1], fill=(200, 200, 200))
                tw = draw.textlength("failed", font=font)
                draw.text((x0 + (tile_w - tw) / 2, y0 + tile_h / 2 - font_px / 2), "failed", fill=(150, 0, 0),
                          font=font)
                continue
            tile = image.convert("RGB")
            if scale > 1:
                tile = tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)
            canvas.paste(tile, (x0 + (tile_w - tile.width) // 2, y0 + (tile_h - tile.height) // 2))
    return canvas


__all__ = ["AXIS_KINDS", "AXIS_NAMES", "Axis", "PlannedCell", "axis_kind", "check_value", "compose_grid", "make_axis",
           "parse_axis", "plan_cells", "run_order", "split_values"]
