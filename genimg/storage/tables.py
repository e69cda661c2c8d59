"""The tables, as SQLAlchemy Core objects (the newest schema; ``migrations/`` builds it step by step).

Times are Unix seconds (float): portable across SQLite and PostgreSQL and easy to compare.
Images are PNG bytes in the database, so a battle or a preview opens on any replica.
"""

from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String,
                        Table, Text, UniqueConstraint)

metadata = MetaData()

# One blind comparison: the same prompt and seed on 2-4 models, shown in `models` order as A, B, ...
battles = Table(
    "battles", metadata,
    Column("id", String(32), primary_key=True),        # random, unguessable
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("category", String(64)),                     # the prompt suite's category, when it has one
    Column("seed", BigInteger, nullable=False),
    Column("settings", JSON, nullable=False),           # resolved parameters per model
    Column("models", JSON, nullable=False),             # model ids in display order (A, B, ...)
    Column("image_hashes", JSON, nullable=False),       # sha256 of each image's PNG, same order
    Column("timings", JSON, nullable=False),            # per model, same order; revealed after the vote
    Column("session", String(64)),                      # anonymous session id (no personal data)
    Index("ix_battles_session_created", "session", "created_at"),
    Index("ix_battles_expires", "expires_at"),
)

# At most one vote per battle: the unique battle_id makes a second vote fail in the database itself.
votes = Table(
    "votes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("battle_id", String(32), ForeignKey("battles.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("choice", String(32), nullable=False),       # A | B | tie | both_bad, or a ranking such as "C>A>B"
    Column("session", String(64)),
    Column("created_at", Float, nullable=False),
)

# A result someone shared: opens read-only at ?preview=<id>.
previews = Table(
    "previews", metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("kind", String(16), nullable=False),         # compare | arena
    Column("prompt", Text, nullable=False),
    Column("payload", JSON, nullable=False),            # seeds, models, timings, captions
)

# The PNG bytes of battle and preview images; `owner` is "battle:<id>" or "preview:<id>".
images = Table(
    "images", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(48), nullable=False),
    Column("slot", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("png", LargeBinary, nullable=False),
    UniqueConstraint("owner", "slot", name="uq_images_owner_slot"),
)
