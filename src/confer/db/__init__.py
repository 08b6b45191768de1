"""Persistence: SQLAlchemy models, async sessions and Alembic migrations."""
