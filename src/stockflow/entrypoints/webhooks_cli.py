"""`stockflow webhooks ...`: register, list, rotate, disable and enable endpoints, list
their deliveries and replay them; and `stockflow relay`, which delivers."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from stockflow import StockflowError
from stockflow.adapters.db import store
from stockflow.adapters.db import webhooks as hooks
from stockflow.adapters.ports import require_free
from stockflow.adapters.settings import Settings
from stockflow.contract.instants import INSTANT_HELP
from stockflow.domain.webhooks import valid_pattern
from stockflow.entrypoints.app import migrated_database
from stockflow.entrypoints.arguments import instant
from stockflow.entrypoints.relay_app import run_relay
from stockflow.usecases.webhooks import add_endpoint, replay_since, rotate_secret

__all__ = ["register"]


def _patterns(text: str, what: str) -> list[str]:
    found = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in found if not valid_pattern(p)]
    if not found or bad:
        raise StockflowError(f"--{what}: patterns are comma-separated event types or keys "
                             f"with * for any characters; refused: {bad or [text]}")
    return found


def _endpoint(conn: store.Conn, endpoint_id: str) -> hooks.Endpoint:
    found = hooks.endpoint(conn, endpoint_id)
    if found is None:
        raise StockflowError(f"no webhook endpoint {endpoint_id!r}")
    return found


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        made = add_endpoint(conn, settings, url=args.url,
                            events=_patterns(args.events, "events"),
                            keys=_patterns(args.keys, "keys"), description=args.description)
    print(f"endpoint {made.endpoint_id}")
    print(f"secret   {made.secret}   (shown once: the receiver verifies signatures with it)")
    return 0


def _view(ep: hooks.Endpoint) -> dict[str, Any]:
    return {"id": ep.id, "url": ep.url, "state": ep.state, "events": list(ep.event_patterns),
            "keys": list(ep.key_patterns), "description": ep.description,
            "disabled_reason": ep.disabled_reason,
            "failing_since": ep.failing_since.isoformat() if ep.failing_since else None,
            "created_at": ep.created_at.isoformat()}


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        views = [_view(ep) for ep in hooks.endpoints(conn)]
    if args.json:
        print(json.dumps(views, indent=2))
        return 0
    for v in views:
        state = v["state"] + (f" ({v['disabled_reason']})" if v["disabled_reason"] else "")
        print(f"{v['id']}  {state:<9}  {v['url']}  events={','.join(v['events'])} "
              f"keys={','.join(v['keys'])}  {v['description']}")
    if not views:
        print("no webhook endpoints (add one: stockflow webhooks add URL --events ...)")
    return 0


def cmd_rotate(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        _endpoint(conn, args.id)
        made = rotate_secret(conn, settings, args.id)
    print(f"secret   {made.secret}   (shown once; the previous secret also signs for "
          f"{made.grace})")
    return 0


def cmd_state(args: argparse.Namespace, settings: Settings) -> int:
    enabled = args.action == "enable"
    with migrated_database(settings) as conn:
        _endpoint(conn, args.id)
        hooks.set_state(conn, args.id, enabled=enabled, reason="disabled by an operator")
    print(f"{args.id} {'enabled' if enabled else 'disabled'}")
    return 0


def cmd_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        _endpoint(conn, args.id)
        rows = hooks.deliveries(conn, args.id, failed_only=args.failed, limit=args.limit)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2, default=str))
        return 0
    for r in rows:
        last = r.last_status if r.last_status is not None else (r.last_error or "-")
        print(f"{r.event_id}  {r.type:<22} {r.subject:<24} {r.status:<9} "
              f"attempts={r.attempts} last={last}")
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        queued = replay_since(conn, _endpoint(conn, args.id), args.since, args.until)
    print(f"{queued} deliver{'y' if queued == 1 else 'ies'} queued again for {args.id}")
    return 0


def cmd_relay(_: argparse.Namespace, settings: Settings) -> int:
    require_free(settings.metrics_host, settings.relay_metrics_port,
                 Settings.variable("relay_metrics_port"))
    run_relay(settings)
    return 0


def register(sub: Any) -> None:  # argparse's _SubParsersAction
    """Add `webhooks` and `relay` to the CLI's subcommands."""
    sub.add_parser("relay", help="deliver output events to webhook endpoints").set_defaults(
        func=cmd_relay)
    hooks_ = sub.add_parser("webhooks", help="manage webhook endpoints").add_subparsers(
        dest="action", required=True)
    add = hooks_.add_parser("add", help="register an endpoint; prints its id and secret once")
    add.add_argument("url")
    add.add_argument("--events", required=True,
                     help="event type patterns, e.g. stock.changed,low-stock.*,reservation.*")
    add.add_argument("--keys", default="*", help="key patterns, e.g. SKU-1@* (default: all)")
    add.add_argument("--description", default="")
    add.set_defaults(func=cmd_add)
    ls = hooks_.add_parser("list", help="list endpoints (never their secrets)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    rotate = hooks_.add_parser("rotate", help="a new secret; the old one signs for a while")
    rotate.add_argument("id")
    rotate.set_defaults(func=cmd_rotate)
    for action in ("disable", "enable"):
        p = hooks_.add_parser(action, help=f"{action} an endpoint")
        p.add_argument("id")
        p.set_defaults(func=cmd_state)
    dl = hooks_.add_parser("deliveries", help="an endpoint's deliveries, newest first")
    dl.add_argument("id")
    dl.add_argument("--failed", action="store_true", help="only failing or exhausted ones")
    dl.add_argument("--limit", type=int, default=100)
    dl.add_argument("--json", action="store_true")
    dl.set_defaults(func=cmd_deliveries)
    replay = hooks_.add_parser("replay", help="deliver an endpoint's events again, same ids")
    replay.add_argument("id")
    replay.add_argument("--since", type=instant, required=True,
                        help=f"event time: {INSTANT_HELP}")
    replay.add_argument("--until", type=instant, default=None, help="event time, before")
    replay.set_defaults(func=cmd_replay)
