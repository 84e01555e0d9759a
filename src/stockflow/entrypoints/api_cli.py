"""`stockflow api` (serve the HTTP API) and `stockflow apikeys create|list|revoke`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from stockflow import StockflowError
from stockflow.adapters.db import api_keys
from stockflow.adapters.ports import require_free
from stockflow.adapters.settings import Settings
from stockflow.contract.api_keys import SCOPES
from stockflow.entrypoints.app import migrated_database
from stockflow.usecases.api_keys import create_key

__all__ = ["register"]


def _scopes(text: str) -> list[str]:
    found = sorted({s.strip() for s in text.split(",") if s.strip()})
    if not found or set(found) - set(SCOPES):
        raise StockflowError(f"--scopes: a comma-separated choice of {', '.join(SCOPES)}; "
                             f"got {text!r}")
    return found


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        made = create_key(conn, args.name, _scopes(args.scopes))
    print(f"key      {made.id}")
    print(f"token    {made.token}   (shown once: only its hash is stored)")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        rows = api_keys.keys(conn)
    listed: list[dict[str, Any]] = [{"id": k.id, "name": k.name, "scopes": sorted(k.scopes),
               "created_at": k.created_at.isoformat(),
               "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None}
              for k in rows]
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    for k in listed:
        state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
        print(f"{k['id']}  {k['name']:<24} {','.join(k['scopes']):<18} {state}")
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        if not api_keys.revoke(conn, args.id):
            raise StockflowError(f"no active API key {args.id!r}")
    print(f"{args.id} revoked (servers stop accepting it within seconds)")
    return 0


def cmd_api(_: argparse.Namespace, settings: Settings) -> int:
    require_free(settings.api_host, settings.api_port, Settings.variable("api_port"))
    from stockflow.entrypoints.api.app import run_api  # noqa: PLC0415 - FastAPI loads here only

    run_api(settings)
    return 0


def register(sub: Any) -> None:  # argparse's _SubParsersAction
    """Add `api` and `apikeys` to the CLI's subcommands."""
    sub.add_parser("api", help="serve the HTTP API").set_defaults(func=cmd_api)
    keys = sub.add_parser("apikeys", help="manage API keys").add_subparsers(
        dest="action", required=True)
    create = keys.add_parser("create", help="make a key; prints its token once")
    create.add_argument("--name", required=True, help="who uses it (recorded as the actor)")
    create.add_argument("--scopes", default="read", help=f"comma-separated: {', '.join(SCOPES)}")
    create.set_defaults(func=cmd_create)
    listing = keys.add_parser("list", help="list keys (never their tokens)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id")
    revoke.set_defaults(func=cmd_revoke)
