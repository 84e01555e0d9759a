"""Versioned, idempotent migrations: `stockflow db migrate` applies the ones not yet applied."""

from __future__ import annotations

from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from stockflow import StockflowError

__all__ = ["migrate", "migrations", "require_migrated"]

_LOCK = 0x5707F10  # one migrator at a time per database


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every shipped migration, in order."""
    folder = resources.files("stockflow.adapters.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


def migrate(dsn: str, schema: str, upto: int | None = None) -> list[str]:
    """Bring `schema` up to date (or up to version `upto`); returns the names of the
    migrations applied now."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK,))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY, name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())""")
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, body in migrations():
                if version in done or (upto is not None and version > upto):
                    continue
                with conn.transaction():
                    conn.execute(body)  # trusted, shipped SQL
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                                 (version, name))
                applied_now.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
    return applied_now


def require_migrated(conn: psycopg.Connection[Any]) -> None:
    """Refuse, with the command that helps, a schema behind the shipped migrations."""
    latest = max(v for v, _, _ in migrations())
    try:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except psycopg.Error as exc:
        raise StockflowError("database is not migrated: run `stockflow db migrate`") from exc
    if row is None or row[0] is None or row[0] < latest:
        raise StockflowError("database is behind: run `stockflow db migrate`")
