"""Alembic migrations: the only way Studbook's schema changes, on SQLite and PostgreSQL alike."""
