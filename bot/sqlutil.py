"""Dialect-aware upserts (SQLite and PostgreSQL both speak ON CONFLICT)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(bind: AsyncSession | Connection, table: Table | Any) -> Any:
    dialect = (bind.dialect if isinstance(bind, Connection) else bind.get_bind().dialect).name
    mod = postgresql if dialect == "postgresql" else sqlite
    return mod.insert(table)
