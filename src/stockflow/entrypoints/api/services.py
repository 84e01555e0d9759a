"""What the API's routes work with, made once when the app starts (its pool, gate,
publishers, outcome poller and settings), and the typed dependencies that hand each of
them to a route: a route declares `pool: Pool` or `sender: EventSender`, never reaches
into untyped request or app state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from stockflow.adapters.settings import Settings
from stockflow.entrypoints.api.outcomes import Outcomes
from stockflow.usecases.sender import ImportSender, Sender

if TYPE_CHECKING:  # auth finds the gate through `services_of`: imported the other way round
    from stockflow.entrypoints.api.auth import Gate

__all__ = ["ApiServices", "ApiSettings", "EventSender", "ImportPublisher", "Pool", "Services",
           "Waits", "services_of"]


@dataclass(frozen=True)
class Services:
    """One API process's shared objects; `build_app`'s lifespan makes them and hands them
    to every request as the lifespan state `services`."""

    settings: Settings
    pool: AsyncConnectionPool
    gate: Gate
    sender: Sender
    import_sender: ImportSender
    outcomes: Outcomes


def services_of(request: Request) -> Services:
    """The app's services, for a request (also used by the authenticating route class,
    which runs before FastAPI resolves dependencies)."""
    found = getattr(request.state, "services", None)
    if not isinstance(found, Services):  # only an app served without its lifespan
        raise TypeError("the request carries no API services: serve the app with its "
                        "lifespan")
    return found


def _pool(request: Request) -> AsyncConnectionPool:
    return services_of(request).pool


def _sender(request: Request) -> Sender:
    return services_of(request).sender


def _import_sender(request: Request) -> ImportSender:
    return services_of(request).import_sender


def _outcomes(request: Request) -> Outcomes:
    return services_of(request).outcomes


def _settings(request: Request) -> Settings:
    return services_of(request).settings


ApiServices = Annotated[Services, Depends(services_of)]
Pool = Annotated[AsyncConnectionPool, Depends(_pool)]
EventSender = Annotated[Sender, Depends(_sender)]
ImportPublisher = Annotated[ImportSender, Depends(_import_sender)]
Waits = Annotated[Outcomes, Depends(_outcomes)]
ApiSettings = Annotated[Settings, Depends(_settings)]
