"""Arena battles and votes, shared previews, their images.

Revision ID: 0001_arena
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_arena"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "battles",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("category", sa.String(64)),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("image_hashes", sa.JSON, nullable=False),
        sa.Column("timings", sa.JSON, nullable=False),
        sa.Column("session", sa.String(64)),
    )
    op.create_index("ix_battles_session_created", "battles", ["session", "created_at"])
    op.create_index("ix_battles_expires", "battles", ["expires_at"])
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("battle_id", sa.String(32), sa.ForeignKey("battles.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("choice", sa.String(32), nullable=False),
        sa.Column("session", sa.String(64)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "previews",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(48), nullable=False),
        sa.Column("slot", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("png", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("owner", "slot", name="uq_images_owner_slot"),
    )


def downgrade() -> None:
    op.drop_table("images")
    op.drop_table("previews")
    op.drop_table("votes")
    op.drop_index("ix_battles_expires", "battles")
    op.drop_index("ix_battles_session_created", "battles")
    op.drop_table("battles")
