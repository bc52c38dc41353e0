"""Field types shared by API schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def utc(value: datetime) -> datetime:
    """`value` with its UTC offset: SQLite stores timestamps without one, and every timestamp
    Studbook writes is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDateTime = Annotated[datetime, AfterValidator(utc)]
