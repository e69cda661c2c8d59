"""The worlds an embedded text-to-image model can learn: its data, evaluation set and scoring.

A world is what differs between ``python -m genimg train diffusion`` (the shapes of
:mod:`genimg.scenes`) and ``python -m genimg train emoji`` (the OpenMoji scenes of
:mod:`genimg.emoji`); the trainer, the loop, the tracking and the export are shared.
Each world registers itself by name; registering a name twice is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from genimg.errors import GenimgError


@dataclass(frozen=True)
class World:
    """One world: how to make training data, which scenes to evaluate on and how to score them.

    ``make_dataset(n, seed, size)`` returns uint8 images (n, size, size, 3) and captions;
    ``render_scenes(scenes, size)`` the ground truth of given scenes (uint8, same layout);
    ``eval_scenes()`` the evaluation scenes used during training (each with ``.caption``);
    ``score(images_u8, scenes)`` the metrics dict of an evaluation; ``best_metric`` the
    (metric, "max"|"min") that picks the best checkpoint; ``sample_prompts`` the prompts of
    the sample grids and of the mode-collapse check; ``data_tag`` prefixes cache file names
    (empty for the shapes world, whose caches predate worlds).
    """

    name: str
    domain: str
    make_dataset: Callable[[int, int, int], tuple[np.ndarray, list[str]]]
    render_scenes: Callable[[list, int], np.ndarray]
    eval_scenes: Callable[[], list]
    score: Callable[[list, list], dict]
    best_metric: tuple[str, str]
    sample_prompts: tuple[str, ...]
    data_tag: str = ""
    description: str = ""


WORLDS: dict[str, World] = {}


def register_world(world: World) -> World:
    """Add ``world`` to :data:`WORLDS`; raises GenimgError if its name is taken."""
    if world.name in WORLDS:
        raise GenimgError(f"training world {world.name!r} is registered twice")
    WORLDS[world.name] = world
    return world


def get_world(name: str) -> World:
    """The registered world ``name``; raises GenimgError naming the known ones if there is none."""
    if name not in WORLDS:
        raise GenimgError(f"unknown training world {name!r}; expected one of {', '.join(sorted(WORLDS))}")
    return WORLDS[name]


# --------------------------------------------------------------------------- shapes


def _shapes_dataset(n: int, seed: int, size: int):
    from genimg.scenes.grammar import make_dataset

    return make_dataset(n, seed, size)


def _shapes_render(scenes, size: int) -> np.ndarray:
    from genimg.scenes.grammar import render

    return np.stack([np.asarray(render(sc, size)) for sc in scenes])


def _shapes_eval_scenes():
    from genimg.scenes.grammar import eval_prompt_set

    return eval_prompt_set()


def _shapes_score(images_u8, scenes):
    from genimg.scenes.evaluator import faithfulness_metrics

    return faithfulness_metrics(images_u8, scenes)


SHAPES_SAMPLE_PROMPTS = ("a large red circle on a white background", "a small blue square on a yellow background",
                         "two green triangles on a black background", "a purple star to the left of an orange circle "
                         "on a white background")

register_world(World(
    name="shapes", domain="scene-grammar", make_dataset=_shapes_dataset, render_scenes=_shapes_render, eval_scenes=_shapes_eval_scenes,
    score=_shapes_score, best_metric=("single_colour_bg_shape", "max"), sample_prompts=SHAPES_SAMPLE_PROMPTS,
    description="genimg.scenes.grammar: coloured circles, squares, triangles and stars"))


# --------------------------------------------------------------------------- emoji

EMOJI_RENDER_SIZE = 128  # the grammar renders here (its minimum is 96 px); smaller models get box-downsampled data


def _emoji_dataset(n: int, seed: int, size: int):
    from genimg.emoji.grammar import make_dataset
    from genimg.training.data import downsample

    render = max(size, EMOJI_RENDER_SIZE)
    if render % size:
        raise GenimgError(f"emoji scenes render at {render} px; a {size} px model needs a size dividing it")
    images, captions = make_dataset(n, seed, render)
    return downsample(images, size), captions


def _emoji_render(scenes, size: int) -> np.ndarray:
    from genimg.emoji.grammar import render
    from genimg.training.data import downsample

    big = max(size, EMOJI_RENDER_SIZE)
    return downsample(np.stack([np.asarray(render(sc, big)) for sc in scenes]), size)


def _emoji_eval_scenes():
    from genimg.emoji.evaluator import training_scenes

    return training_scenes()


def _emoji_score(images_u8, scenes):
    from genimg.emoji.evaluator import faithfulness_metrics

    return faithfulness_metrics(images_u8, scenes)


EMOJI_SAMPLE_PROMPTS = ("a cat on a white background", "a big grinning face on a yellow background",
                        "three strawberries on a blue background", "a dog to the left of a rocket on a pink background")

register_world(World(
    name="emoji", domain="emoji-world", make_dataset=_emoji_dataset, render_scenes=_emoji_render, eval_scenes=_emoji_eval_scenes,
    score=_emoji_score, best_metric=("single_emoji", "max"), sample_prompts=EMOJI_SAMPLE_PROMPTS, data_tag="emoji_",
    description="genimg.emoji.grammar: OpenMoji emoji scenes (CC BY-SA 4.0)"))
