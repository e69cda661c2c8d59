"""The arena against real databases: SQLite (a WAL file) and a real PostgreSQL server started for the session.

What a user would notice: a vote counts for the model that drew the image voted for; ratings put
models in the order of their true strength with intervals that cover it; votes survive a restart;
16 clients voting at once lose nothing and a battle takes exactly one vote; bad input gets a clear
error and changes nothing.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genimg.arena import ratings, store
from genimg.arena.ratings import VotedBattle
from genimg.errors import GenimgError
from genimg.storage import open_engine
from tests.arena_clients import client, tiny_png
from tests.postgres_server import postgres_server  # noqa: F401  (session fixture)

ROOT = Path(__file__).resolve().parent.parent
TRUE = {"m-best": 1200.0, "m-good": 1100.0, "m-mid": 1000.0, "m-weak": 900.0, "m-worst": 800.0}  # mean 1000


def simulate(n: int, seed: int, ties: float = 0.0) -> list[VotedBattle]:
    """``n`` battles between random pairs, outcomes drawn from the Bradley–Terry model with TRUE ratings."""
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    out = []
    for _ in range(n):
        i, j = rng.choice(len(names), 2, replace=False)
        a, b = names[i], names[j]
        p_a = 1.0 / (1.0 + 10 ** ((TRUE[b] - TRUE[a]) / 400))
        u = rng.random()
        choice = "tie" if u < ties else ("A" if rng.random() < p_a else "B")
        out.append(VotedBattle((a, b), choice))
    return out


def test_ratings_recover_a_known_ranking_with_covering_intervals(artifacts_dir):
    rows = ratings.leaderboard(simulate(3000, seed=7), rounds=200, seed=0)
    assert [r["model"] for r in rows] == list(TRUE)  # best first
    for row in rows:
        assert row["ci_low"] <= TRUE[row["model"]] <= row["ci_high"], row
    # Coverage over independent simulations (a property of the intervals, not of one draw).
    covered = total = 0
    order_right = 0
    for seed in range(10):
        sim = ratings.leaderboard(simulate(1500, seed=100 + seed), rounds=100, seed=seed)
        order_right += [r["model"] for r in sim] == list(TRUE)
        for r in sim:
            total += 1
            covered += r["ci_low"] <= TRUE[r["model"]] <= r["ci_high"]
    assert covered / total >= 0.8
    assert order_right >= 8
    figures = {"battles": 3000, "rows": rows, "max_abs_error": max(abs(r["rating"] - TRUE[r["model"]]) for r in rows),
               "coverage_10x1500": covered / total, "order_right_10x1500": order_right}
    (artifacts_dir / "arena-ratings.json").write_text(json.dumps(figures, indent=1))
    print("\nrecovery:", json.dumps(figures))


def test_ties_and_both_bad_are_half_wins_and_counted_apart():
    battles = [VotedBattle(("x", "y"), "A"), VotedBattle(("x", "y"), "tie"), VotedBattle(("y", "x"), "both_bad"),
               VotedBattle(("y", "x"), "A")]
    rows = {r["model"]: r for r in ratings.leaderboard(battles, rounds=0)}
    assert rows["x"]["battles"] == rows["y"]["battles"] == 4
    assert (rows["x"]["wins"], rows["x"]["ties"], rows["x"]["both_bad"], rows["x"]["losses"]) == (1, 1, 1, 1)
    assert rows["x"]["rating"] == pytest.approx(rows["y"]["rating"])  # 2 of 4 each: equal
    only_ties = {r["model"]: r["rating"] for r in ratings.leaderboard([VotedBattle(("x", "y"), "tie")] * 5, rounds=0)}
    assert only_ties["x"] == only_ties["y"] == 1000.0


def test_a_ranking_of_three_is_every_ordered_pair():
    pairs = ratings.pair_outcomes(VotedBattle(("p", "q", "r"), "c>a>b"))
    assert pairs == [("r", "p", 1.0), ("r", "q", 1.0), ("p", "q", 1.0)]
    with pytest.raises(GenimgError, match="ranking"):
        ratings.normalise_choice("A>B", 3)


# ------------------------------------------------------------------------------------------- databases


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty database of each kind: a SQLite file in a temporary GENIMG_DATA_DIR, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'genimg.sqlite3'}"
    return request.getfixturevalue("postgres_server").new_database()


def battle(engine, models=("alpha", "beta"), ttl_s=3600.0, now=None, category=None) -> str:
    return store.create_battle(prompt="a red circle", category=category, seed=3, models=list(models),
                               pngs=[tiny_png((60 * i, 0, 255)) for i in range(len(models))],
                               settings=[{}] * len(models), timings=[{"wall_s": 0.5}, {"wall_s": 1.5}][:len(models)],
                               session="s1", ttl_s=ttl_s, engine=engine, now=now)


def test_votes_count_for_the_model_that_drew_the_image(db_url):
    from genimg.tasks.arena import leaderboard, vote

    engine = open_engine(db_url)
    first = battle(engine, ("alpha", "beta"))
    second = battle(engine, ("beta", "alpha"), category="count")
    revealed = vote(first, "b", engine=engine)  # B of the first battle is beta
    assert revealed["a"]["model"] == "alpha" and revealed["b"]["model"] == "beta"
    assert revealed["a"]["wall_s"] == 0.5 and revealed["choice"] == "B"
    vote(second, "A", engine=engine)  # A of the second battle is beta again
    board = leaderboard(rounds=50, engine=engine)
    rows = {r["model"]: r for r in board["rows"]}
    assert (rows["beta"]["wins"], rows["beta"]["battles"]) == (2, 2)
    assert (rows["alpha"]["wins"], rows["alpha"]["losses"]) == (0, 2)
    assert rows["beta"]["rating"] > rows["alpha"]["rating"]
    assert [r["model"] for r in board["categories"]["count"]] == ["beta", "alpha"]
    engine.dispose()


def test_bad_input_gets_a_clear_error_and_loses_nothing(db_url):
    engine = open_engine(db_url)
    ok = battle(engine)
    with pytest.raises(GenimgError, match="not a vote: use one of A, B, tie, both_bad"):
        store.record_vote(ok, "C", engine=engine)
    with pytest.raises(GenimgError, match="unknown battle"):
        store.record_vote("0" * 32, "A", engine=engine)
    with pytest.raises(GenimgError, match="is not one"):
        store.record_vote("../../etc/passwd", "A", engine=engine)
    store.record_vote(ok, "A", engine=engine)
    with pytest.raises(GenimgError, match=r"already has its vote \(A\); one vote per battle"):
        store.record_vote(ok, "B", engine=engine)
    old = battle(engine, ttl_s=60, now=time.time() - 120)
    with pytest.raises(GenimgError, match="expired"):
        store.record_vote(old, "A", engine=engine)
    assert [(b.models, b.choice) for b in store.voted_battles(engine)] == [(("alpha", "beta"), "A")]
    assert store.purge_expired(engine) == 1  # the expired, unvoted one and its images
    with pytest.raises(GenimgError, match="unknown battle"):
        store.get_battle(old, engine)
    assert len(store.battle_pngs(ok, engine)) == 2  # the voted battle keeps its images
    engine.dispose()


def test_votes_survive_a_restart(db_url, tmp_path):
    engine = open_engine(db_url)
    for choice in ("A", "A", "B", "tie"):
        store.record_vote(battle(engine), choice, engine=engine)
    engine.dispose()
    # A new process, as after a restart: the CLI reads the same database.
    env = {**os.environ, "GENIMG_DB_URL": db_url, "GENIMG_DATA_DIR": str(tmp_path / "unused")}
    done = subprocess.run([sys.executable, "-m", "genimg", "arena", "leaderboard", "--json", "--rounds", "50"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {r["model"]: r for r in json.loads(done.stdout)["rows"]}
    assert (rows["alpha"]["battles"], rows["alpha"]["wins"], rows["alpha"]["ties"]) == (4, 2, 1)
    assert rows["beta"]["wins"] == 1
    assert rows["alpha"]["ci_low"] <= rows["alpha"]["rating"] <= rows["alpha"]["ci_high"]


def test_sixteen_concurrent_voting_clients_lose_nothing(db_url, artifacts_dir):
    clients, per_client = 16, 25
    engine = open_engine(db_url)  # migrated once here; each client opens its own engine as a replica would
    contested = battle(engine, ("x", "y"))
    start_at = time.time() + 8  # the spawned clients import first, then start together
    with multiprocessing.get_context("spawn").Pool(clients) as workers:
        results = workers.starmap(client, [(db_url, i, per_client, start_at, contested) for i in range(clients)])
    assert [r["errors"] for r in results] == [[]] * clients
    assert sum(r["counted"] for r in results) == clients * per_client
    races = [r["race"] for r in results]
    assert races.count("counted") == 1, races
    assert all(r.startswith("refused: battle") and "already has its vote" in r for r in races if r != "counted")
    stored = store.voted_battles(engine)
    assert len(stored) == clients * per_client + 1
    expected: dict[str, int] = {}
    for r in results:
        for model, n in r["wins"].items():
            expected[model] = expected.get(model, 0) + n
    tallies = ratings.tallies(stored)
    assert {m: t["wins"] for m, t in tallies.items() if m not in ("x", "y")} == expected
    slowest = max(r["seconds"] for r in results)
    figures = {"database": engine.url.get_backend_name(), "clients": clients, "votes": clients * per_client,
               "lost": clients * per_client - (len(stored) - 1), "contested_votes_counted": races.count("counted"),
               "slowest_client_s": round(slowest, 2), "votes_per_s": round(clients * per_client / slowest, 1)}
    path = artifacts_dir / "arena-concurrency.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, figures["database"]: figures}, indent=1))
    print("\nconcurrency:", json.dumps(figures))
    engine.dispose()


def test_previews_keep_their_images_and_numbers(db_url):
    engine = open_engine(db_url)
    pngs = [tiny_png((1, 2, 3)), tiny_png((4, 5, 6))]
    preview_id = store.save_preview("compare", "a fox", {"seeds": [5], "cells": [{"model": "m"}]}, pngs, engine)
    record, loaded = store.load_preview(preview_id, engine)
    assert loaded == pngs and record["prompt"] == "a fox" and record["payload"]["seeds"] == [5]
    with pytest.raises(GenimgError, match="unknown preview"):
        store.load_preview("f" * 32, engine)
    engine.dispose()


def test_opening_twice_keeps_the_schema(db_url):
    from sqlalchemy import inspect, text

    first = open_engine(db_url)
    first.dispose()
    again = open_engine(db_url)
    with again.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001_arena"
    assert {"battles", "votes", "previews", "images"} <= set(inspect(again).get_table_names())
    again.dispose()


# ------------------------------------------------------------------------------ through the task and CLI


def test_a_battle_generates_anonymous_images_and_reveals_after_the_vote(pool, tmp_path, monkeypatch):
    from genimg.tasks.arena import share_battle, start_battle, vote, open_preview

    monkeypatch.setenv("GENIMG_DATA_DIR", str(tmp_path / "data"))
    engine = open_engine(f"sqlite:///{tmp_path / 'data' / 'genimg.sqlite3'}")
    result = start_battle("a red circle", seed=11, pool=pool, engine=engine)
    assert len(result.images) == 2 and all(im.size == (32, 32) for im in result.images)
    assert all(not im.info for im in result.images)  # nothing for Gradio to copy into the served PNG
    for data in store.battle_pngs(result.battle_id, engine):
        with Image.open(__import__("io").BytesIO(data)) as im:
            assert not getattr(im, "text", {}), im.text  # no parameters / genimg chunks
    with pytest.raises(GenimgError, match="vote first"):
        share_battle(result.battle_id, engine)
    revealed = vote(result.battle_id, "A", engine=engine)
    assert {revealed["a"]["model"], revealed["b"]["model"]} == {"tiny-a", "tiny-b"}  # missing-hub cannot run
    assert revealed["seed"] == 11 and revealed["a"]["wall_s"] > 0
    record, images = open_preview(share_battle(result.battle_id, engine), engine)
    assert record["kind"] == "arena" and len(images) == 2 and record["payload"]["choice"] == "A"
    engine.dispose()


def test_a_random_battle_pairs_models_of_the_prompts_world():
    """The shipped catalog holds two worlds (shapes, emoji): a random pair must be able to draw the prompt."""
    from genimg.models.catalog import load_catalog
    from genimg.models.pool import ModelPool
    from genimg.tasks.arena import models_for_prompt, pick_models

    pool = ModelPool(load_catalog())
    shapes = {"genimg-diffusion", "genimg-fewstep", "genimg-gan", "genimg-vae"}
    assert set(models_for_prompt(pool, "a large red star on a white background")) == shapes
    assert set(models_for_prompt(pool, "a cat to the left of a rocket on a blue background")) == {"genimg-emoji"}
    assert set(models_for_prompt(pool, "qwerty zxcv")) == shapes  # outside every world: the largest one
    for _ in range(20):
        assert set(pick_models(pool, None, 2, "three green triangles on a black background")) <= shapes
    with pytest.raises(GenimgError, match="only 1 of the models here can draw this prompt and a battle needs 2"):
        pick_models(pool, None, 2, "a cat on a blue background")
    # Chosen models are the visitor's call.
    assert set(pick_models(pool, ["genimg-emoji", "genimg-gan"], 2, "a cat")) == {"genimg-emoji", "genimg-gan"}


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path):
    env = {**os.environ, "GENIMG_DATA_DIR": str(tmp_path / "data")}
    env.pop("GENIMG_DB_URL", None)
    for argv, words in ((["vote", "0" * 32, "A"], "unknown battle"), (["vote", "0" * 32, "left"], "not a vote"),
                        (["leaderboard", "--rounds", "-1"], "rounds")):
        done = subprocess.run([sys.executable, "-m", "genimg", "arena", *argv], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.startswith("error: ") and words in done.stderr and len(done.stderr.splitlines()) == 1
    done = subprocess.run([sys.executable, "-m", "genimg", "arena", "export", "--format", "csv", "--out",
                           str(tmp_path / "export"), "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    paths = json.loads(done.stdout)["paths"]
    assert [Path(p).name for p in paths] == ["leaderboard.csv", "votes.csv"]
    assert Path(paths[0]).read_text().startswith("model,rating,ci_low,ci_high,battles,wins")
    assert (tmp_path / "data" / "genimg.sqlite3").exists()  # the default database, in GENIMG_DATA_DIR


def test_hosted_rate_limit_and_a_ranking_of_three(db_url):
    engine = open_engine(db_url)
    store.check_rate("s1", 2, engine)
    battle(engine)
    three = store.create_battle(prompt="three", category=None, seed=1, models=["p", "q", "r"],
                                pngs=[tiny_png((i, i, i)) for i in range(3)], settings=[{}] * 3, timings=[{}] * 3,
                                session="s1", ttl_s=3600, engine=engine)
    with pytest.raises(GenimgError, match="too many battles: this session started 2 in the last minute"):
        store.check_rate("s1", 2, engine)
    store.check_rate("another-session", 2, engine)  # per session
    with pytest.raises(GenimgError, match="not a ranking"):
        store.record_vote(three, "A", engine=engine)
    assert store.record_vote(three, "c, a, b", engine=engine).choice == "C>A>B"
    tallies = ratings.tallies(store.voted_battles(engine))
    assert (tallies["r"]["wins"], tallies["p"]["losses"], tallies["q"]["losses"]) == (1, 1, 1)
    engine.dispose()


def test_replicas_starting_together_migrate_once(db_url):
    from tests.arena_clients import open_at

    start_at = time.time() + 6
    with multiprocessing.get_context("spawn").Pool(8) as workers:
        revisions = workers.starmap(open_at, [(db_url, start_at)] * 8)
    assert revisions == ["0001_arena"] * 8


def test_api_battle_is_blind_and_vote_reveals(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    image_a, image_b, battle_id = client.predict(prompt="a green star", models=[], seed=4, api_name="/arena_battle")
    for path in (image_a, image_b):
        assert Path(path).name == "image.png"
        with Image.open(path) as im:
            assert im.size == (32, 32) and not getattr(im, "text", {})
    with pytest.raises(Exception, match="not a vote: use one of A, B, tie, both_bad"):
        client.predict(battle_id=battle_id, choice="left", api_name="/arena_vote")
    revealed = client.predict(battle_id=battle_id, choice="both_bad", api_name="/arena_vote")
    assert {revealed["a"]["model"], revealed["b"]["model"]} == {"tiny-a", "tiny-b"} and revealed["seed"] == 4
    with pytest.raises(Exception, match="already has its vote"):
        client.predict(battle_id=battle_id, choice="A", api_name="/arena_vote")
    summary, table, plot, files = client.predict(category="all", api_name="/leaderboard")
    assert "voted battle" in summary and {row[0] for row in table["data"]} >= {"tiny-a", "tiny-b"}
    assert "<svg" in plot and sorted(Path(f).name for f in files) == ["leaderboard.csv", "leaderboard.json",
                                                                      "votes.csv", "votes.json"]


def test_cli_battle_then_vote(tmp_path):
    env = {**os.environ, "GENIMG_DATA_DIR": str(tmp_path / "data")}
    env.pop("GENIMG_DB_URL", None)

    def cli(*argv):
        done = subprocess.run([sys.executable, "-m", "genimg", "arena", *argv], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    for sub in ("battle", "export"):  # (vote and leaderboard are run below; every subcommand has --help)
        assert "usage:" in cli(sub, "--help")
    made = json.loads(cli("battle", "--suite", "grammar", "--models", "genimg-gan,genimg-vae", "--seed", "2",
                          "--out", str(tmp_path / "battle"), "--json"))
    assert [Path(p).name for p in made["paths"]] == ["A.png", "B.png"] and made["category"]
    for path in made["paths"]:
        with Image.open(path) as im:
            assert not getattr(im, "text", {})
    revealed = json.loads(cli("vote", made["battle_id"], "B", "--json"))
    assert {revealed["a"]["model"], revealed["b"]["model"]} == {"genimg-gan", "genimg-vae"}
    board = json.loads(cli("leaderboard", "--json", "--category", made["category"]))
    assert {r["model"]: r["wins"] for r in board["rows"]}[revealed["b"]["model"]] == 1
