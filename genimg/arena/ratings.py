"""Bradley–Terry ratings on an Elo-like scale, with bootstrap intervals. Pure functions: no database.

A vote becomes pairwise outcomes: A or B is a win (score 1 / 0); a tie and "both bad" are half a
win each way (as Chatbot Arena counts them: neither model was preferred); a K-wise ranking is
every ordered pair (the first beats all the others, ...). Strengths are the maximum-likelihood
Bradley–Terry fit (Hunter's MM iteration) with a weak prior of one drawn game between every pair,
which keeps a model that never won finite. Ratings are ``1000 + 400 log10(strength)`` with the
strengths' geometric mean at 1, so the ratings average 1000 and a 400-point gap means 10:1 odds.
Intervals resample whole battles (a K-wise ranking's pairs stay together) and refit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from genimg.errors import GenimgError

SCALE = 400.0
BASE_RATING = 1000.0
PRIOR_GAMES = 1.0
PAIR_CHOICES = ("A", "B", "tie", "both_bad")
LETTERS = "ABCD"


@dataclass(frozen=True)
class VotedBattle:
    """One voted battle: model ids in display order (A, B, ...), the choice, the prompt's category."""

    models: tuple[str, ...]
    choice: str
    category: str | None = None


def normalise_choice(choice: object, n_models: int = 2) -> str:
    """The canonical form of a vote: A, B, tie, both_bad for a pair; "C>A>B" for a ranking of 3-4.

    Accepts any case, "both bad"/"both-bad", and rankings written "CAB", "C>A>B" or "C,A,B".
    Raises GenimgError naming what is allowed.
    """
    text = str(choice if choice is not None else "").strip()
    letters = LETTERS[:n_models]
    if n_models == 2:
        low = text.lower().replace(" ", "_").replace("-", "_")
        for canonical in PAIR_CHOICES:
            if low == canonical.lower():
                return canonical
        raise GenimgError(f"choice {text!r} is not a vote: use one of A, B, tie, both_bad")
    ranking = [c for c in text.upper() if c not in " >,"]
    if sorted(ranking) != list(letters):
        raise GenimgError(f"choice {text!r} is not a ranking of this battle's {n_models} images: "
                          f"give every letter {', '.join(letters)} once, best first, e.g. {'>'.join(letters[::-1])}")
    return ">".join(ranking)


def pair_outcomes(battle: VotedBattle) -> list[tuple[str, str, float]]:
    """(model i, model j, score of i against j) for every pair a vote compares."""
    models = battle.models
    if len(models) == 2:
        score = {"A": 1.0, "B": 0.0, "tie": 0.5, "both_bad": 0.5}[normalise_choice(battle.choice, 2)]
        return [(models[0], models[1], score)]
    order = [models[LETTERS.index(c)] for c in normalise_choice(battle.choice, len(models)).split(">")]
    return [(order[i], order[j], 1.0) for i in range(len(order)) for j in range(i + 1, len(order))]


def _fit(wins: np.ndarray, games: np.ndarray, tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Bradley–Terry strengths (geometric mean 1) from a win matrix and a games matrix (both K x K).

    ``wins[i, j]`` is i's score against j (fractions allowed), ``games[i, j] = games[j, i]`` the
    number of games. Hunter's (2004) MM update; the prior games are added here.
    """
    k = wins.shape[0]
    off = 1.0 - np.eye(k)
    wins = wins + off * PRIOR_GAMES / 2
    games = games + off * PRIOR_GAMES
    total = wins.sum(axis=1)
    p = np.ones(k)
    for _ in range(max_iter):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = total / denom
        new /= np.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < tol:
            p = new
            break
        p = new
    return p


def _matrices(ia: np.ndarray, ib: np.ndarray, score: np.ndarray, weight: np.ndarray, k: int):
    flat_ab, flat_ba = ia * k + ib, ib * k + ia
    wins = (np.bincount(flat_ab, weights=score * weight, minlength=k * k)
            + np.bincount(flat_ba, weights=(1.0 - score) * weight, minlength=k * k)).reshape(k, k)
    games = (np.bincount(flat_ab, weights=weight, minlength=k * k)
             + np.bincount(flat_ba, weights=weight, minlength=k * k)).reshape(k, k)
    return wins, games


def to_rating(strengths: np.ndarray) -> np.ndarray:
    """Elo-like ratings from Bradley–Terry strengths (geometric mean 1 -> mean 1000)."""
    return BASE_RATING + SCALE * np.log10(strengths)


def bradley_terry(battles: Sequence[VotedBattle], rounds: int = 200, seed: int = 0,
                  confidence: float = 0.95) -> dict[str, dict[str, float]]:
    """Ratings and bootstrap intervals of every model in ``battles``.

    Returns {model: {"rating", "ci_low", "ci_high"}} (empty for no battles). ``rounds`` bootstrap
    resamples of whole battles (0: no intervals, they equal the rating); ``seed`` makes them
    reproducible. Raises GenimgError for a vote that is not one.
    """
    models = sorted({m for b in battles for m in b.models})
    if not models:
        return {}
    index = {m: i for i, m in enumerate(models)}
    ia, ib, score, owner = [], [], [], []
    for n, battle in enumerate(battles):
        for a, b, s in pair_outcomes(battle):
            ia.append(index[a])
            ib.append(index[b])
            score.append(s)
            owner.append(n)
    ia_, ib_, score_, owner_ = (np.asarray(ia, int), np.asarray(ib, int), np.asarray(score, float),
                                np.asarray(owner, int))
    k = len(models)
    ratings = to_rating(_fit(*_matrices(ia_, ib_, score_, np.ones(len(ia_)), k)))
    low, high = ratings.copy(), ratings.copy()
    if rounds > 0:
        rng = np.random.default_rng(seed)
        samples = np.empty((rounds, k))
        n_battles = len(battles)
        for r in range(rounds):
            counts = rng.multinomial(n_battles, np.full(n_battles, 1.0 / n_battles))
            samples[r] = to_rating(_fit(*_matrices(ia_, ib_, score_, counts[owner_].astype(float), k)))
        tail = (1.0 - confidence) / 2 * 100
        low, high = np.percentile(samples, tail, axis=0), np.percentile(samples, 100 - tail, axis=0)
    return {m: {"rating": float(ratings[i]), "ci_low": float(low[i]), "ci_high": float(high[i])}
            for m, i in index.items()}


def tallies(battles: Iterable[VotedBattle]) -> dict[str, dict[str, int]]:
    """Per model: battles (voted battles it was in), wins (votes for it: chosen, or ranked first),
    losses, ties, both_bad."""
    out: dict[str, dict[str, int]] = {}
    for battle in battles:
        n = len(battle.models)
        choice = normalise_choice(battle.choice, n)
        winner = (battle.models[LETTERS.index(choice[0])] if n > 2 else
                  {"A": battle.models[0], "B": battle.models[1]}.get(choice))
        for model in battle.models:
            row = out.setdefault(model, {"battles": 0, "wins": 0, "losses": 0, "ties": 0, "both_bad": 0})
            row["battles"] += 1
            if choice == "tie":
                row["ties"] += 1
            elif choice == "both_bad":
                row["both_bad"] += 1
            elif model == winner:
                row["wins"] += 1
            else:
                row["losses"] += 1
    return out


def leaderboard(battles: Sequence[VotedBattle], rounds: int = 200, seed: int = 0) -> list[dict[str, object]]:
    """Leaderboard rows, best first: model, rating, ci_low, ci_high, battles, wins, losses, ties, both_bad.

    Ratings are rounded to 0.1; ``rounds``/``seed`` as in :func:`bradley_terry`.
    """
    fitted = bradley_terry(battles, rounds=rounds, seed=seed)
    counts = tallies(battles)
    rows = [{"model": m, "rating": round(r["rating"], 1), "ci_low": round(r["ci_low"], 1),
             "ci_high": round(r["ci_high"], 1), **counts[m]} for m, r in fitted.items()]
    return sorted(rows, key=lambda row: (-row["rating"], row["model"]))


def by_category(battles: Sequence[VotedBattle], rounds: int = 200, seed: int = 0) -> dict[str, list[dict[str, object]]]:
    """A leaderboard per prompt category (battles without a category are left out here)."""
    categories = sorted({b.category for b in battles if b.category})
    return {c: leaderboard([b for b in battles if b.category == c], rounds=rounds, seed=seed) for c in categories}
