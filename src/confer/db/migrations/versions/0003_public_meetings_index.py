"""an index of public meetings by status, so a meeting list never scans every meeting

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_meetings_public_status",
        "meetings",
        ["status"],
        sqlite_where=sa.text("is_public = 1"),
        postgresql_where=sa.text("is_public"),
    )


def downgrade() -> None:
    op.drop_index("ix_meetings_public_status", table_name="meetings")
