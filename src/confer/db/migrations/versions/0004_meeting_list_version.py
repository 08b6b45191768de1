"""a version counter for meeting lists, raised by triggers on every write they depend on

Revision ID: 0004
Revises: 0003

The counter is raised inside the writing transaction, so the new version becomes visible
together with the data it stands for, whichever process, server or tool wrote it.

On PostgreSQL the triggers are deferred to commit and raise the counter once per transaction:
the counter's row lock is then the last lock a transaction takes, held only while it commits.
Taken at each statement instead, it would be held across the rest of the transaction and form
deadlocks with row locks (one writer holding a meeting row and waiting for the counter, another
holding the counter and waiting for that meeting). SQLite has one writer at a time and row
triggers only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BUMP = "UPDATE data_versions SET version = version + 1 WHERE name = 'meeting_lists'"
# (table, the events on it that can change a meeting list). Participants' columns are named
# because their mute flags and activity stamps change often and no list shows them.
WATCHED = [
    ("meetings", ["INSERT", "DELETE", "UPDATE"]),
    ("participants", ["INSERT", "DELETE", "UPDATE OF meeting_id, user_id, role, state"]),
    ("users", ["UPDATE OF username, full_name"]),
]
PG_FUNCTION = f"""
CREATE FUNCTION confer_bump_meeting_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('confer.meeting_lists_bumped', true) IS DISTINCT FROM 'on' THEN
        {BUMP};
        PERFORM set_config('confer.meeting_lists_bumped', 'on', true);  -- until commit
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "data_versions",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO data_versions (name, version) VALUES ('meeting_lists', 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table, events in WATCHED:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {table}_bump_meeting_lists "
                f"AFTER {' OR '.join(events)} ON {table} DEFERRABLE INITIALLY DEFERRED "
                "FOR EACH ROW EXECUTE FUNCTION confer_bump_meeting_lists()"
            )
        for table in ("meetings", "participants"):  # constraint triggers cannot watch TRUNCATE
            op.execute(
                f"CREATE TRIGGER {table}_truncate_bumps_meeting_lists AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION confer_bump_meeting_lists()"
            )
    else:
        for table, events in WATCHED:
            for event in events:
                op.execute(
                    f"CREATE TRIGGER {_sqlite_name(table, event)} AFTER {event} ON {table} "
                    f"FOR EACH ROW BEGIN {BUMP}; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _ in WATCHED:
            op.execute(f"DROP TRIGGER {table}_bump_meeting_lists ON {table}")
        for table in ("meetings", "participants"):
            op.execute(f"DROP TRIGGER {table}_truncate_bumps_meeting_lists ON {table}")
        op.execute("DROP FUNCTION confer_bump_meeting_lists()")
    else:
        for table, events in WATCHED:
            for event in events:
                op.execute(f"DROP TRIGGER {_sqlite_name(table, event)}")
    op.drop_table("data_versions")


def _sqlite_name(table: str, event: str) -> str:
    return f"{table}_{event.split()[0].lower()}_bumps_meeting_lists"
