"""The "ideal model" for set metrics: grammar renders of exactly what each grammar prompt asks."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np


def reference_scene(prompt: str, seed: int):
    """A grammar scene that the (grammar) prompt describes, sampled with the grammar's own
    layout rules from a generator seeded by (seed, crc32(prompt)): the "ideal model" output
    for FD/KID references. Raises GenimgError for a prompt outside the grammar."""
    from genimg.scenes import grammar
    from genimg.scenes.prompts import parse_prompt

    spec = parse_prompt(prompt)
    rng = np.random.default_rng([int(seed), zlib.crc32(prompt.encode("utf-8"))])
    a = spec.objects[0]
    # The grammar's sampler pins shape, colour, position, relation and count; sizes are drawn,
    # so resample until they match the prompt (at most 1 in 4 tries fails), then set the
    # second object's shape/colour and the background, which do not change the layout.
    for _ in range(200):
        scene = grammar.compose_scene(rng, spec.kind, shape=a.shape, colour=a.colour, position=spec.position,
                                      relation=spec.relation, count=a.count if spec.kind == "count" else None)
        sizes_ok = a.size is None or scene.objects[0].size == a.size
        if spec.kind == "relation" and spec.objects[1].size is not None:
            sizes_ok = sizes_ok and scene.objects[1].size == spec.objects[1].size
        if sizes_ok:
            break
    objects = list(scene.objects)
    if spec.kind == "relation":
        b = spec.objects[1]
        objects[1] = replace(objects[1], shape=b.shape, colour=b.colour)
    used = {o.colour for o in objects}
    background = spec.background or scene.background
    if background in used:
        free = [c for c in grammar.COLOUR_NAMES if c not in used]
        background = free[int(rng.integers(0, len(free)))]
    return grammar.Scene(tuple(objects), background, spec.kind, prompt, spec.position, spec.relation)


def render_references(prompts: list[str], seeds: list[int], size: int) -> list[np.ndarray]:
    """uint8 RGB renders (``size`` px) of :func:`reference_scene` for each (prompt, seed) pair."""
    from genimg.scenes.grammar import render

    return [np.asarray(render(reference_scene(p, s), size)) for p, s in zip(prompts, seeds)]
