"""Arena use cases: start a blind battle, vote, the leaderboard, export, shared previews.

A battle is the Compare path (genimg.tasks.compare: same prompt and seed, models one after
another, a warm-up for a freshly loaded model) on models drawn at random, shown in a random order
as A, B, ... Its images are stored without metadata and its timings are kept hidden until the vote.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
from dataclasses import dataclass
from typing import Any

from PIL import Image
from sqlalchemy import Engine

from genimg.arena import ratings, store
from genimg.arena.prompts import draw
from genimg.config import settings
from genimg.domains import can_draw, domain_of
from genimg.errors import GenimgError
from genimg.models.pool import ModelPool, get_pool
from genimg.outputs import json_safe
from genimg.runner import ProgressFn
from genimg.tasks.compare import compare
from genimg.tasks.generate import GenerateRequest

log = logging.getLogger(__name__)
_random = random.SystemRandom()
LEADERBOARD_COLUMNS = ("model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties", "both_bad")


@dataclass
class BattleResult:
    """What a voter may see: the battle id, the images in display order, the prompt. No model names."""

    battle_id: str
    images: list[Image.Image]
    prompt: str
    category: str | None
    seed: int


def available_models(pool: ModelPool) -> list[str]:
    """Text-to-image models whose weights are here (the ones a battle may draw)."""
    return [spec.id for spec in pool.catalog.values()
            if "text-to-image" in spec.tasks and pool.availability(spec.id)[0]]


def models_for_prompt(pool: ModelPool, prompt: str | None, here: list[str] | None = None) -> list[str]:
    """The models a random battle on ``prompt`` may draw: those of one world, so that a pair is fair.

    Models whose prompt domain reads ``prompt``, plus open-vocabulary models (no domain). When no
    domain reads it (a prompt outside every world), the models of the largest world - all equally
    outside it. ``here``: the candidates (default: every available text-to-image model).
    """
    here = available_models(pool) if here is None else here
    able = [m for m in here if can_draw(pool.spec(m), prompt or "")]
    open_vocabulary = [m for m in here if domain_of(pool.spec(m)) is None]
    if len(able) > len(open_vocabulary):  # some world reads the prompt (an empty one: every world)
        return able
    worlds: dict[str, list[str]] = {}
    for model_id in (m for m in here if m not in open_vocabulary):
        worlds.setdefault(domain_of(pool.spec(model_id)).id, []).append(model_id)
    return open_vocabulary + (max(worlds.values(), key=len) if worlds else [])


def pick_models(pool: ModelPool, models: Any = None, k: int = 2, prompt: str | None = None) -> list[str]:
    """The battle's models in display order: the chosen ones (shuffled) or ``k`` drawn at random.

    A random draw takes models that can draw ``prompt`` (:func:`models_for_prompt`): an emoji model
    is never paired with a shapes model on a shapes prompt. Raises GenimgError for a bad choice or
    when fewer than ``k`` models can run here (or draw the prompt).
    """
    k = int(k)
    if k < 2 or k > len(ratings.LETTERS):
        raise GenimgError(f"a battle shows 2 to {len(ratings.LETTERS)} images, not {k}")
    if models:
        ids = pool.choose(models, task="text-to-image", least=2, most=len(ratings.LETTERS), what="a battle")
    else:
        here = available_models(pool)
        if len(here) < k:
            raise GenimgError(f"a battle of {k} needs {k} text-to-image models that can run here; "
                              f"{len(here)} can (python -m genimg models says how to add weights)")
        able = models_for_prompt(pool, prompt, here)
        if len(able) < k:
            raise GenimgError(f"only {len(able)} of the models here can draw this prompt and a battle needs {k}: "
                              "draw a prompt from the scene grammar, or pick the models yourself")
        ids = _random.sample(able, k)
    # The display order must not follow the order a person typed the models in.
    return _random.sample(ids, len(ids))


def start_battle(prompt: str | None = None, models: Any = None, *, k: int = 2, seed: int = -1,
                 suite: str | None = None, category: str | None = None, session: str | None = None,
                 pool: ModelPool | None = None, engine: Engine | None = None,
                 progress: ProgressFn | None = None) -> BattleResult:
    """Generate one blind battle and store it.

    ``prompt`` (or one drawn from ``suite``: "grammar" or a prompt file), ``models`` (None: ``k``
    drawn at random from the models that can run here), ``seed`` (-1: random; the same for every
    model). Returns a BattleResult with nothing naming a model. Raises GenimgError for bad input,
    the session's rate limit, or a model that could not run (the battle is then not stored).
    """
    pool = pool or get_pool()
    env = settings()
    store.check_rate(session, env.arena_rate_per_min, engine)
    if not (prompt or "").strip() and suite:
        prompt, category = draw(suite)
    ids = pick_models(pool, models, k, prompt)
    result = compare(GenerateRequest(prompt=prompt or "", model="", seed=seed, batch=1), ids, pool,
                     progress=progress, warmup=True)
    failed = [cell for cell in result.cells if cell.result is None]
    if failed:
        for cell in failed:
            log.warning("arena battle: %s could not run: %s", cell.model, cell.error)
        # Naming the model would unblind the battle: say what happened, not who.
        raise GenimgError(f"{len(failed)} of the {len(ids)} drawn models could not run this prompt "
                          f"({failed[0].error if not models else 'see the server log'}); start a new battle")
    images = [cell.result.images[0] for cell in result.cells]
    timings = []
    for cell in result.cells:
        summary = cell.summary()
        summary.pop("model")
        timings.append({"name": cell.result.model.get("name", cell.model), **summary})
    store.purge_expired(engine)
    battle_id = store.create_battle(
        prompt=result.cells[0].result.params["prompt"], category=category, seed=result.seeds[0], models=ids,
        pngs=[store.png_bytes(im) for im in images], settings=[cell.result.params for cell in result.cells],
        timings=timings, session=session, ttl_s=env.arena_ttl_s, engine=engine)
    return BattleResult(battle_id=battle_id, images=[_clean(im) for im in images],
                        prompt=result.cells[0].result.params["prompt"], category=category, seed=result.seeds[0])


def battle_images(battle_id: Any, engine: Engine | None = None) -> list[Image.Image]:
    """A stored battle's images in display order (A, B, ...), decoded. Raises GenimgError for an unknown id."""
    return [_decode(data) for data in store.battle_pngs(store.get_battle(battle_id, engine).id, engine)]


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def _clean(image: Image.Image) -> Image.Image:
    """A copy of ``image`` without any info (Gradio writes text info into the PNG it serves)."""
    return Image.frombytes(image.mode, image.size, image.tobytes())


def vote(battle_id: Any, choice: Any, session: str | None = None, engine: Engine | None = None) -> dict[str, Any]:
    """Record the vote and reveal the battle: {"battle_id", "choice", "a": {model, name, timings...}, "b": ...}.

    ``choice``: A, B, tie or both_bad (a ranking such as "C>A>B" for 3-4 images). Raises
    GenimgError for a bad choice, an unknown or expired battle, or a second vote.
    """
    return json_safe(store.record_vote(battle_id, choice, session=session, engine=engine).reveal())


def leaderboard(category: str | None = None, rounds: int = 200, engine: Engine | None = None) -> dict[str, Any]:
    """Bradley–Terry ratings with bootstrap 95 % intervals from every vote (or one category's).

    Returns {"rows": [...], "categories": {category: rows}, "votes": n, "rounds": rounds}; rows
    have LEADERBOARD_COLUMNS.
    """
    battles = store.voted_battles(engine, category=category or None)
    return {"rows": ratings.leaderboard(battles, rounds=rounds), "votes": len(battles), "rounds": rounds,
            "category": category or None,
            "categories": {} if category else ratings.by_category(battles, rounds=rounds)}


def leaderboard_csv(rows: list[dict[str, Any]]) -> str:
    """Leaderboard rows as CSV text (LEADERBOARD_COLUMNS)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(LEADERBOARD_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def votes_csv(log_rows: list[dict[str, Any]]) -> str:
    """The vote log as CSV text: one row per vote, models and timings as JSON cells."""
    out = io.StringIO()
    fields = ["battle_id", "voted_at", "prompt", "category", "seed", "models", "choice", "image_sha256", "timings"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in log_rows:
        writer.writerow({**row, **{k: json.dumps(row[k]) for k in ("models", "image_sha256", "timings")}})
    return out.getvalue()


def export(fmt: str = "json", rounds: int = 200, engine: Engine | None = None) -> dict[str, str]:
    """The leaderboard and the vote log as text files: {"leaderboard.<fmt>": text, "votes.<fmt>": text}.

    Raises GenimgError for a format other than csv or json.
    """
    fmt = str(fmt).strip().lower()
    if fmt not in ("csv", "json"):
        raise GenimgError(f"export format {fmt!r} is not one: use csv or json")
    board = leaderboard(rounds=rounds, engine=engine)
    log_rows = store.vote_log(engine)
    if fmt == "csv":
        return {"leaderboard.csv": leaderboard_csv(board["rows"]), "votes.csv": votes_csv(log_rows)}
    return {"leaderboard.json": json.dumps(json_safe(board), indent=1),
            "votes.json": json.dumps(json_safe(log_rows), indent=1)}


def share_compare(prompt: str, seeds: list[int], cells: list[dict[str, Any]], images: list[Image.Image],
                  captions: list[str], engine: Engine | None = None) -> str:
    """Store a Compare result (its summaries, images and captions) as a preview; return its id."""
    payload = json_safe({"seeds": seeds, "cells": cells, "captions": captions})
    return store.save_preview("compare", prompt, payload, [store.png_bytes(im) for im in images], engine)


def share_battle(battle_id: Any, engine: Engine | None = None) -> str:
    """Store a voted battle as a preview (models revealed); return its id. Raises GenimgError before the vote."""
    battle = store.get_battle(battle_id, engine)
    if battle.choice is None:
        raise GenimgError("vote first: a battle is shared with its models revealed, after its vote")
    reveal = battle.reveal()
    cells = [reveal[letter.lower()] for letter in battle.letters]
    captions = [f"{letter} · {cell.get('name', cell['model'])}" for letter, cell in zip(battle.letters, cells)]
    payload = json_safe({"seeds": [battle.seed], "cells": cells, "captions": captions, "choice": battle.choice,
                         "category": battle.category})
    return store.save_preview("arena", battle.prompt, payload, store.battle_pngs(battle.id, engine), engine)


def open_preview(preview_id: Any, engine: Engine | None = None) -> tuple[dict[str, Any], list[Image.Image]]:
    """A shared preview: its record and its images (decoded). Raises GenimgError for an unknown id."""
    record, pngs = store.load_preview(preview_id, engine)
    return record, [_decode(data) for data in pngs]
