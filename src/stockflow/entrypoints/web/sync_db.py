"""The synchronous queries the CLI uses (webhooks, API keys, the warehouse registry), run
for a console page in a worker thread on a connection of their own, so the event loop
never waits on them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

from stockflow.adapters.db import store
from stockflow.entrypoints.api.services import services_of
from stockflow.entrypoints.app import database

__all__ = ["in_db"]

T = TypeVar("T")


async def in_db(request: Request, work: Callable[[store.Conn], T]) -> T:
    """`work` on a fresh connection, in a worker thread."""
    settings = services_of(request).settings

    def run() -> T:
        with database(settings) as conn:
            return work(conn)

    return await asyncio.to_thread(run)
