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

Costs, on PostgreSQL: writers of meetings and participants take turns on the counter's row
while they commit, so such commits no longer overlap (database-wide, about one per commit
latency). Transactions must run at READ COMMITTED, PostgreSQL's default: at REPEATABLE READ a
writer whose transaction began before another's commit fails to raise the counter. Writes made
with session_replication_role = replica (pg_restore --disable-triggers, logical replication)
fire no triggers; restart the servers after such a load.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The columns of each table a meeting list shows or filters by (services.meetings.listing; a
# test holds the two together). Inserts and deletes of meetings and participants count too; a
# user is inserted with no meetings, and deleting one deletes theirs. An update that leaves
# these columns as they were (a mute, an activity stamp, a lock taken by `SET status = status`)
# does not count.
WATCHED = {
    "meetings": [
        "title",
        "meeting_code",
        "host_id",
        "start_time",
        "status",
        "is_public",
        "password_hash",
        "duration",
        "max_participants",
    ],
    "participants": ["meeting_id", "user_id", "role", "state"],
    "users": ["username", "full_name"],
}
ROWS_COUNT = ("meetings", "participants")  # inserts and deletes change lists
PG_FUNCTION = """
CREATE FUNCTION confer_bump_meeting_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('confer.meeting_lists_bumped', true) IS DISTINCT FROM 'on' THEN
        UPDATE {table} SET version = version + 1 WHERE name = 'meeting_lists';
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
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _postgresql_triggers() -> None:
    # Schema-qualified: a writer's search_path must not decide which table the trigger updates.
    schema = op.get_bind().execute(sa.text("SELECT current_schema()")).scalar_one()
    op.execute(PG_FUNCTION.format(table=f'"{schema}".data_versions'))
    deferred = "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
    bump = "EXECUTE FUNCTION confer_bump_meeting_lists()"
    for table, columns in WATCHED.items():
        old = ", ".join(f"OLD.{c}" for c in columns)
        new = ", ".join(f"NEW.{c}" for c in columns)
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_update_bumps_meeting_lists "
            f"AFTER UPDATE OF {', '.join(columns)} ON {table} {deferred} "
            f"WHEN (ROW({old}) IS DISTINCT FROM ROW({new})) {bump}"
        )
    for table in ROWS_COUNT:
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_insert_delete_bumps_meeting_lists "
            f"AFTER INSERT OR DELETE ON {table} {deferred} {bump}"
        )
        # Constraint triggers cannot watch TRUNCATE.
        op.execute(
            f"CREATE TRIGGER {table}_truncate_bumps_meeting_lists AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT {bump}"
        )


def _sqlite_triggers() -> None:
    bump = "UPDATE data_versions SET version = version + 1 WHERE name = 'meeting_lists'"
    for table, columns in WATCHED.items():
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
        op.execute(
            f"CREATE TRIGGER {table}_update_bumps_meeting_lists "
            f"AFTER UPDATE OF {', '.join(columns)} ON {table} FOR EACH ROW "
            f"WHEN {changed} BEGIN {bump}; END"
        )
    for table in ROWS_COUNT:
        for event in ("insert", "delete"):
            op.execute(
                f"CREATE TRIGGER {table}_{event}_bumps_meeting_lists AFTER {event.upper()} "
                f"ON {table} FOR EACH ROW BEGIN {bump}; END"
            )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    triggers = [(f"{t}_update_bumps_meeting_lists", t) for t in WATCHED]
    kinds = ("insert_delete", "truncate") if postgresql else ("insert", "delete")
    triggers += [(f"{t}_{kind}_bumps_meeting_lists", t) for t in ROWS_COUNT for kind in kinds]
    for name, table in triggers:
        op.execute(f"DROP TRIGGER {name} ON {table}" if postgresql else f"DROP TRIGGER {name}")
    if postgresql:
        op.execute("DROP FUNCTION confer_bump_meeting_lists()")
    op.drop_table("data_versions")
