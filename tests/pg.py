"""A fresh PostgreSQL database per test (the multi-instance backend)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@asynccontextmanager
async def fresh_database(prefix: str) -> AsyncIterator[str]:
    """Yield an SQLAlchemy URL of a new empty database; drop it afterwards.

    Outside CI a machine without PostgreSQL skips; in CI (CI=true) that is a failure.
    """
    asyncpg = pytest.importorskip("asyncpg")
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but not reachable at 127.0.0.1:5432: {e}")
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 as postgres: {e}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
