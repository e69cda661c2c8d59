"""Scene-QA backend: genimg's own offline answerer (:class:`genimg.vqa.scene_qa.SceneAnswerer`).

A catalog entry with ``backend = "scene-qa"`` needs no weights: the answerer is the scene grammar's
classical-vision detector plus a question parser, so it is always available and loads at once.
"""

from __future__ import annotations

import sys
from typing import Any

from genimg.errors import GenimgError
from genimg.models.backends import register
from genimg.models.catalog import ModelSpec


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Always available: classical vision, no weights."""
    return True, "genimg's own classical-vision answerer (no weights)"


def is_present(spec: ModelSpec) -> bool:
    """Nothing to download."""
    return True


def load(spec: ModelSpec, placement: Any) -> Any:
    """A :class:`~genimg.vqa.scene_qa.SceneAnswerer` (placement is irrelevant: numpy on the CPU)."""
    from genimg.vqa.scene_qa import SceneAnswerer

    return SceneAnswerer()


def make_variant(model: Any, kind: str, spec: ModelSpec) -> Any:
    """Answerers have no variants."""
    raise GenimgError(f"answerer {spec.id!r} has no {kind!r} variant")


register("scene-qa")(sys.modules[__name__])
