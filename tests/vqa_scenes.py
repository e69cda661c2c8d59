"""Scenes drawn by the tests with plain PIL shapes (not the grammar's renderer), with their known contents."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# Our own shades, a little off the grammar's palette, so the answerer is not fed its own renders.
RGB = {"red": (228, 36, 32), "green": (36, 150, 70), "blue": (30, 95, 220), "yellow": (245, 215, 40),
       "purple": (140, 40, 150), "orange": (245, 135, 30), "white": (250, 250, 250), "black": (12, 12, 12)}
SHAPES = ("circle", "square", "triangle", "star")


@dataclass(frozen=True)
class Drawn:
    shape: str
    colour: str
    x: float  # centre, fraction of the side
    y: float
    d: float  # bounding-box side, fraction


def _points(shape: str, cx: float, cy: float, d: float) -> list[tuple[float, float]]:
    r = d / 2
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else r * 0.45
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        return pts
    raise ValueError(shape)


def draw(objects: list[Drawn], background: str, size: int) -> Image.Image:
    """The scene at ``size`` px: drawn 4x larger and reduced (anti-aliased edges, as any renderer makes)."""
    big = size * 4
    image = Image.new("RGB", (big, big), RGB[background])
    pen = ImageDraw.Draw(image)
    for o in objects:
        cx, cy, d = o.x * big, o.y * big, o.d * big
        box = [cx - d / 2, cy - d / 2, cx + d / 2, cy + d / 2]
        if o.shape == "circle":
            pen.ellipse(box, fill=RGB[o.colour])
        elif o.shape == "square":
            pen.rectangle(box, fill=RGB[o.colour])
        else:
            pen.polygon(_points(o.shape, cx, cy, d), fill=RGB[o.colour])
    return image.resize((size, size), Image.Resampling.BOX)


def random_scene(rng: np.random.Generator, n_objects: int, size_range=(0.2, 0.36)) -> tuple[list[Drawn], str]:
    """1-3 non-overlapping objects of distinct (shape, colour) on a plain background."""
    colours = list(RGB)
    background = colours[int(rng.integers(len(colours)))]
    free = [c for c in colours if c != background]
    objects: list[Drawn] = []
    while len(objects) < n_objects:
        d = float(rng.uniform(*size_range))
        x, y = (float(rng.uniform(d / 2 + 0.05, 1 - d / 2 - 0.05)) for _ in range(2))
        if any(math.hypot(x - o.x, y - o.y) < (d + o.d) / 2 * 1.25 + 0.04 for o in objects):
            continue
        shape = SHAPES[int(rng.integers(4))]
        colour = free[int(rng.integers(len(free)))]
        if any((o.shape, o.colour) == (shape, colour) for o in objects):
            continue
        objects.append(Drawn(shape, colour, x, y, d))
    return objects, background
