"""Battles, votes and previews in the database (genimg.storage): what is kept, and the rules.

Rules kept here, for every front end: one vote per battle (a unique constraint, so two
concurrent votes cannot both count), a battle expires (``GENIMG_ARENA_TTL_S``), a session may
start only so many battles a minute (``GENIMG_ARENA_RATE``; hosted mode 10). The only thing
kept about a visitor is an anonymous session id.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from PIL import Image
from sqlalchemy import Engine, and_, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from genimg.arena.ratings import LETTERS, VotedBattle, normalise_choice
from genimg.errors import GenimgError
from genimg.storage import get_engine
from genimg.storage.tables import battles, images, previews, votes

_ID = re.compile(r"^[0-9a-f]{32}$")


class UnknownRecordError(GenimgError):
    """A battle or preview id that is not (or no longer) in the database."""


@dataclass
class Battle:
    """A stored battle; ``choice`` is None until it is voted."""

    id: str
    prompt: str
    category: str | None
    seed: int
    models: list[str]
    image_hashes: list[str]
    timings: list[dict[str, Any]]
    settings: list[dict[str, Any]]
    created_at: float
    expires_at: float
    choice: str | None = None
    letters: list[str] = field(default_factory=list)

    def reveal(self) -> dict[str, Any]:
        """The answer after the vote: each letter's model and timings, the vote, the prompt."""
        out: dict[str, Any] = {"battle_id": self.id, "choice": self.choice, "prompt": self.prompt,
                               "category": self.category, "seed": self.seed}
        for letter, model, timing in zip(LETTERS, self.models, self.timings):
            out[letter.lower()] = {"model": model, **timing}
        return out


def new_id() -> str:
    """A random, unguessable 32-hex-digit id (a permalink must not be enumerable)."""
    return secrets.token_hex(16)


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as a PNG with no text chunks (nothing in it may name a model)."""
    clean = Image.frombytes(image.mode, image.size, image.tobytes()) if image.mode in ("RGB", "RGBA", "L") \
        else image.convert("RGB")
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _image_rows(owner: str, pngs: Sequence[bytes]) -> list[dict[str, Any]]:
    rows = []
    for slot, data in enumerate(pngs):
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
        rows.append({"owner": owner, "slot": slot, "sha256": hashlib.sha256(data).hexdigest(), "width": width,
                     "height": height, "png": data})
    return rows


def _check_id(value: Any, what: str) -> str:
    text = str(value or "").strip().lower()
    if not _ID.match(text):
        raise UnknownRecordError(f"{what} id {str(value or '')[:40]!r} is not one: a {what} id is the 32 "
                                 f"hexadecimal digits the {what} was given when it was made")
    return text


def check_rate(session: str | None, per_minute: int, engine: Engine | None = None, now: float | None = None) -> None:
    """Raise GenimgError when ``session`` started ``per_minute`` battles in the last minute (0: no limit)."""
    if per_minute <= 0 or not session:
        return
    engine = engine or get_engine()
    now = time.time() if now is None else now
    with engine.connect() as conn:
        recent = conn.execute(select(func.count()).select_from(battles).where(
            and_(battles.c.session == session, battles.c.created_at > now - 60))).scalar_one()
    if recent >= per_minute:
        raise GenimgError(f"too many battles: this session started {recent} in the last minute and the limit is "
                          f"{per_minute}; wait a minute and try again")


def create_battle(*, prompt: str, category: str | None, seed: int, models: Sequence[str], pngs: Sequence[bytes],
                  settings: Sequence[dict[str, Any]], timings: Sequence[dict[str, Any]], session: str | None,
                  ttl_s: float, engine: Engine | None = None, now: float | None = None) -> str:
    """Store a battle (its images too) and return its id. ``models``/``pngs``/``timings`` are in display order."""
    if not (2 <= len(models) <= len(LETTERS)) or len(pngs) != len(models) or len(timings) != len(models):
        raise ValueError(f"a battle needs 2-{len(LETTERS)} models with one image and one timing each")
    engine = engine or get_engine()
    now = time.time() if now is None else now
    battle_id = new_id()
    rows = _image_rows(f"battle:{battle_id}", pngs)
    with engine.begin() as conn:
        conn.execute(insert(battles).values(
            id=battle_id, created_at=now, expires_at=now + ttl_s, prompt=prompt, category=category, seed=int(seed),
            settings=list(settings), models=list(models), image_hashes=[r["sha256"] for r in rows],
            timings=list(timings), session=session))
        conn.execute(insert(images), rows)
    return battle_id


def _battle_from_row(row: Any, choice: str | None) -> Battle:
    return Battle(id=row.id, prompt=row.prompt, category=row.category, seed=row.seed, models=list(row.models),
                  image_hashes=list(row.image_hashes), timings=list(row.timings), settings=list(row.settings),
                  created_at=row.created_at, expires_at=row.expires_at, choice=choice,
                  letters=list(LETTERS[:len(row.models)]))


def get_battle(battle_id: Any, engine: Engine | None = None) -> Battle:
    """The stored battle with its vote (None when not voted). Raises UnknownRecordError."""
    engine = engine or get_engine()
    key = _check_id(battle_id, "battle")
    with engine.connect() as conn:
        row = conn.execute(select(battles).where(battles.c.id == key)).first()
        choice = conn.execute(select(votes.c.choice).where(votes.c.battle_id == key)).scalar()
    if row is None:
        raise UnknownRecordError(f"unknown battle {key}: it was never started here, or it expired unvoted and "
                                 "was cleared; start a new battle")
    return _battle_from_row(row, choice)


def _check_choice(choice: Any) -> None:
    """Raise GenimgError unless ``choice`` is a vote for some battle (a pair's, or a ranking of 3-4)."""
    for n in range(2, len(LETTERS) + 1):
        try:
            normalise_choice(choice, n)
            return
        except GenimgError:
            continue
    normalise_choice(choice, 2)  # raises the pair's message, the common case


def record_vote(battle_id: Any, choice: Any, session: str | None = None, engine: Engine | None = None,
                now: float | None = None) -> Battle:
    """Count one vote for a battle and return the battle (models revealed).

    Raises GenimgError for a bad choice, UnknownRecordError for an unknown battle, and GenimgError
    for an expired battle or one that already has its vote (nothing is changed then).
    """
    engine = engine or get_engine()
    _check_choice(choice)  # a choice that fits no battle is its own error, whatever the battle id
    key = _check_id(battle_id, "battle")
    now = time.time() if now is None else now
    try:
        with engine.begin() as conn:
            row = conn.execute(select(battles).where(battles.c.id == key)).first()
            if row is None:
                raise UnknownRecordError(f"unknown battle {key}: it was never started here, or it expired unvoted "
                                         "and was cleared; start a new battle")
            canonical = normalise_choice(choice, len(row.models))
            voted = conn.execute(select(votes.c.choice).where(votes.c.battle_id == key)).scalar()
            if voted is not None:
                raise GenimgError(f"battle {key} already has its vote ({voted}); one vote per battle — "
                                  "start a new battle to vote again")
            if now > row.expires_at:
                minutes = (row.expires_at - row.created_at) / 60
                raise GenimgError(f"battle {key} expired (battles must be voted within {minutes:g} minutes); "
                                  "start a new battle")
            conn.execute(insert(votes).values(battle_id=key, choice=canonical, session=session, created_at=now))
    except IntegrityError:
        # Another client's vote for the same battle committed between our check and our insert.
        raise GenimgError(f"battle {key} already has its vote; one vote per battle — start a new battle to vote "
                          "again") from None
    return _battle_from_row(row, canonical)


def battle_pngs(battle_id: Any, engine: Engine | None = None) -> list[bytes]:
    """The PNG bytes of a battle's images, in display order."""
    return _pngs(f"battle:{_check_id(battle_id, 'battle')}", engine)


def _pngs(owner: str, engine: Engine | None) -> list[bytes]:
    engine = engine or get_engine()
    with engine.connect() as conn:
        return [r.png for r in conn.execute(select(images.c.png).where(images.c.owner == owner)
                                            .order_by(images.c.slot))]


def voted_battles(engine: Engine | None = None, category: str | None = None) -> list[VotedBattle]:
    """Every voted battle (models in display order, the vote, the category), oldest first."""
    engine = engine or get_engine()
    query = (select(battles.c.models, battles.c.category, votes.c.choice)
             .join(votes, votes.c.battle_id == battles.c.id).order_by(votes.c.id))
    if category:
        query = query.where(battles.c.category == category)
    with engine.connect() as conn:
        return [VotedBattle(tuple(r.models), r.choice, r.category) for r in conn.execute(query)]


def vote_log(engine: Engine | None = None) -> list[dict[str, Any]]:
    """Every vote with its battle (for export): ids, time, prompt, category, seed, models, choice, timings."""
    engine = engine or get_engine()
    query = (select(battles, votes.c.choice, votes.c.created_at.label("voted_at"))
             .join(votes, votes.c.battle_id == battles.c.id).order_by(votes.c.id))
    with engine.connect() as conn:
        return [{"battle_id": r.id, "voted_at": r.voted_at, "prompt": r.prompt, "category": r.category,
                 "seed": r.seed, "models": list(r.models), "choice": r.choice, "image_sha256": list(r.image_hashes),
                 "timings": list(r.timings)} for r in conn.execute(query)]


def purge_expired(engine: Engine | None = None, now: float | None = None) -> int:
    """Delete battles that expired unvoted, with their images; return how many."""
    engine = engine or get_engine()
    now = time.time() if now is None else now
    voted = select(votes.c.battle_id)
    with engine.begin() as conn:
        ids = [r.id for r in conn.execute(select(battles.c.id).where(
            and_(battles.c.expires_at < now, battles.c.id.not_in(voted))))]
        if ids:
            conn.execute(delete(images).where(images.c.owner.in_([f"battle:{i}" for i in ids])))
            conn.execute(delete(battles).where(battles.c.id.in_(ids)))
    return len(ids)


def save_preview(kind: str, prompt: str, payload: dict[str, Any], pngs: Sequence[bytes],
                 engine: Engine | None = None) -> str:
    """Store a shared result (its images too); return its id for ``?preview=<id>``."""
    engine = engine or get_engine()
    preview_id = new_id()
    with engine.begin() as conn:
        conn.execute(insert(previews).values(id=preview_id, created_at=time.time(), kind=kind, prompt=prompt,
                                             payload=payload))
        conn.execute(insert(images), _image_rows(f"preview:{preview_id}", pngs))
    return preview_id


def load_preview(preview_id: Any, engine: Engine | None = None) -> tuple[dict[str, Any], list[bytes]]:
    """A shared result: ({id, kind, prompt, created_at, payload}, PNG bytes in order). Raises UnknownRecordError."""
    engine = engine or get_engine()
    key = _check_id(preview_id, "preview")
    with engine.connect() as conn:
        row = conn.execute(select(previews).where(previews.c.id == key)).first()
    if row is None:
        raise UnknownRecordError(f"unknown preview {key}: check the link (it is case-sensitive and 32 characters "
                                 "long)")
    record = {"id": row.id, "kind": row.kind, "prompt": row.prompt, "created_at": row.created_at,
              "payload": dict(row.payload)}
    return record, _pngs(f"preview:{key}", engine)
