"""A voting client for the concurrency test, run in its own process (spawned: nothing shared but the database)."""

from __future__ import annotations

import io
import time

from PIL import Image


def tiny_png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def client(url: str, index: int, battles: int, start_at: float, contested: str) -> dict:
    """Start ``battles`` battles and vote each (A for even ones, B for odd), then race for the contested battle.

    Returns what this client saw: the votes it got counted, the wins it gave each model, the outcome of
    the race, and errors (there should be none).
    """
    from genimg.arena import store
    from genimg.errors import GenimgError
    from genimg.storage import open_engine

    engine = open_engine(url)
    wins: dict[str, int] = {}
    errors: list[str] = []
    counted = 0
    pngs = [tiny_png((index * 10, 0, 0)), tiny_png((0, index * 10, 0))]
    while time.time() < start_at:  # every client starts at the same moment
        time.sleep(0.005)
    began = time.perf_counter()
    for n in range(battles):
        models = [f"model-{index % 4}", f"model-{(index + n + 1) % 4 + 4}"]
        try:
            battle_id = store.create_battle(prompt=f"client {index} battle {n}", category=None, seed=n, models=models,
                                            pngs=pngs, settings=[{}, {}], timings=[{}, {}], session=f"s{index}",
                                            ttl_s=3600, engine=engine)
            choice = "A" if n % 2 == 0 else "B"
            store.record_vote(battle_id, choice, session=f"s{index}", engine=engine)
            counted += 1
            winner = models[0] if choice == "A" else models[1]
            wins[winner] = wins.get(winner, 0) + 1
        except Exception as exc:  # counted as lost: the test fails on any
            errors.append(f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - began
    try:
        store.record_vote(contested, "tie", session=f"s{index}", engine=engine)
        race = "counted"
    except GenimgError as exc:
        race = "refused: " + str(exc)
    engine.dispose()
    return {"counted": counted, "wins": wins, "race": race, "errors": errors, "seconds": elapsed}


def open_at(url: str, start_at: float) -> str:
    """Open (and so migrate) the database at ``start_at``, as replicas starting together would; return its revision."""
    from sqlalchemy import text

    from genimg.storage import open_engine

    while time.time() < start_at:
        time.sleep(0.005)
    engine = open_engine(url)
    with engine.connect() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return revision
