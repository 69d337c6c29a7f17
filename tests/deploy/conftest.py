"""A real PostgreSQL server on localhost (started by deploy/ci/postgres.sh), one database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

SERVER = {
    "host": os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"),
    "port": 5432,
    "user": os.environ.get("DAGSTER_PG_USERNAME", "dagster"),
    "password": os.environ.get("DAGSTER_PG_PASSWORD", "dagster"),
}
ADMIN_DB = os.environ.get("DAGSTER_PG_DB", "dagster")


def _connect(dbname: str):
    import psycopg2

    return psycopg2.connect(dbname=dbname, connect_timeout=5, **SERVER)


@pytest.fixture
def postgres_db() -> Iterator[dict[str, str]]:
    """A fresh, empty database; yields the DAGSTER_PG_* variables that name it. Skips when no
    server answers, except in CI (``CI`` set), where the server is part of the run."""
    import psycopg2

    try:
        admin = _connect(ADMIN_DB)
    except psycopg2.OperationalError as exc:
        message = (
            f"no PostgreSQL server at {SERVER['host']}:5432 ({exc}); start one with deploy/ci/postgres.sh"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    admin.autocommit = True
    name = f"test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "DAGSTER_PG_HOST": SERVER["host"],
            "DAGSTER_PG_USERNAME": SERVER["user"],
            "DAGSTER_PG_PASSWORD": SERVER["password"],
            "DAGSTER_PG_DB": name,
        }
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def query(postgres_db):
    """``query(sql, *params)`` → rows, read straight from the test's database (not through Dagster)."""
    connection = _connect(postgres_db["DAGSTER_PG_DB"])
    connection.autocommit = True

    def run(sql: str, *params) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    yield run
    connection.close()
