"""`stockflow` command line: topics, migrations, the processor, publishing, stock lookups,
and `up`, the main job on locally started Kafka and Postgres."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from stockflow import StockflowError
from stockflow.adapters.logs import configure
from stockflow.adapters.settings import Settings
from stockflow.adapters.signals import exit_if_stopped_while_starting

__all__ = ["main"]

log = logging.getLogger("stockflow")

_LIVE_RATE, _BACKFILL_RATE = 500.0, 5000.0  # simulate's default offered events/s

# What each subcommand runs: its parsed arguments and the process's one Settings in, the
# exit status out. Only `main` reads the environment.
Command = Callable[[argparse.Namespace, Settings], int]


def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    from stockflow.adapters.kafka import admin, create_topics  # noqa: PLC0415 - keeps --help fast
    from stockflow.contract.topics import Topics  # noqa: PLC0415

    topics = Topics(settings.topic_prefix)
    created = create_topics(admin(settings), topics.all, args.partitions, args.replication_factor)
    for name in topics.all:
        print(f"{'created' if name in created else 'exists '} {name}")
    return 0


def cmd_db_migrate(_: argparse.Namespace, settings: Settings) -> int:
    from stockflow.adapters.db.migrate import migrate  # noqa: PLC0415

    applied = migrate(settings.dsn(), settings.database_schema)
    print(f"schema {settings.database_schema}: "
          + (f"applied {', '.join(applied)}" if applied else "up to date"))
    return 0


def cmd_process(_: argparse.Namespace, settings: Settings) -> int:
    from stockflow.entrypoints.app import run_processor  # noqa: PLC0415

    run_processor(settings)
    return 0


def cmd_coordinate(_: argparse.Namespace, settings: Settings) -> int:
    from stockflow.entrypoints.app import run_coordinator  # noqa: PLC0415

    run_coordinator(settings)
    return 0


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}", end="",
          file=sys.stderr, flush=True)


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    from stockflow.adapters.publisher import Publisher, PublishError, envelope  # noqa: PLC0415

    path = Path(args.file)
    total = sum(1 for line in path.open() if line.strip())
    sent = failed = 0
    with Publisher(settings) as pub:
        for n, line in enumerate(path.open(), 1):
            if not line.strip():
                continue
            try:
                doc: dict[str, Any] = json.loads(line)
                if "specversion" not in doc:
                    doc = envelope(doc["type"], doc["data"], id_=doc.get("id"))
                pub.send(doc, key=doc.get("key"))
                sent += 1
            except (PublishError, ValueError, KeyError, TypeError) as exc:
                failed += 1
                print(f"\nline {n}: rejected: {exc}", file=sys.stderr)
            if (sent + failed) % 500 == 0 or sent + failed == total:
                _progress(sent + failed, total)
    print(f"\npublished {sent:,} events, {failed:,} rejected", file=sys.stderr)
    return 1 if failed else 0


def cmd_stock(args: argparse.Namespace, settings: Settings) -> int:
    from stockflow.adapters.db import queries, store  # noqa: PLC0415

    with store.connect(settings.dsn(), settings.database_schema) as conn:
        doc = queries.stock_of(conn, args.key)
    if doc is None:
        print(f"no stock recorded for {args.key}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, default=str))
    else:
        for k, v in doc.items():
            print(f"{k:>20}  {v}")
    return 0


def _embedded_ports(settings: Settings, names: tuple[str, ...]) -> Settings:
    """The main job on its embedded default listens where it finds room, as its Kafka and
    Postgres do: each of the port settings `names` that the user did not set becomes 0 (a
    free port), so a second job, or a service already on 9108, 8080 or 9109, is no
    conflict. One the user did set must be free, which is checked now rather than after
    Kafka and Postgres have started."""
    from stockflow.adapters.ports import require_free  # noqa: PLC0415

    free: dict[str, Any] = {}
    for name in names:
        if name in settings.model_fields_set:
            host = settings.api_host if name == "api_port" else settings.metrics_host
            require_free(host, getattr(settings, name), Settings.variable(name))
        else:
            free[name] = 0
    return settings.model_copy(update=free)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    """The main job: local Kafka and Postgres (or the configured ones), topics, migrations,
    the processor and, with --simulate, a simulated workload and a live view; until Ctrl-C
    (or --duration)."""
    from stockflow.devtools.localenv import local_services  # noqa: PLC0415

    served = ("metrics_port", "api_port", "relay_metrics_port",
              "coordinator_metrics_port") if args.simulate else (
        "metrics_port",)
    settings = _embedded_ports(settings, served)
    with local_services() as found:
        settings = settings.model_copy(update={
            "kafka_bootstrap": found.kafka_bootstrap,
            "database_url": SecretStr(found.database_url)})
        cmd_topics_create(args, settings)
        cmd_db_migrate(args, settings)
        print(f"kafka {found.kafka_bootstrap}  postgres {found.database_url}\n"
              "Ctrl-C stops everything", file=sys.stderr)
        if not args.simulate:
            return cmd_process(args, settings)
        from stockflow.entrypoints.main_job import run_simulated  # noqa: PLC0415

        return run_simulated(settings, rate=args.rate or _LIVE_RATE, duration=args.duration,
                             skus=args.skus, refresh=args.refresh, as_json=args.json)


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Publish simulated traffic to the configured Kafka until Ctrl-C or --duration."""
    import threading  # noqa: PLC0415

    from stockflow.adapters.publisher import Publisher  # noqa: PLC0415
    from stockflow.adapters.signals import stop_on_signals  # noqa: PLC0415
    from stockflow.devtools.simulate import Simulation, Simulator  # noqa: PLC0415

    if args.backfill_days:
        return _backfill(args, settings)
    sim = Simulator(Publisher(settings, source="stockflow-simulator"),
                    Simulation(skus=args.skus, rate=args.rate or _LIVE_RATE))
    if not args.no_seed:
        sim.seed_stock()
    with stop_on_signals() as stop:
        worker = threading.Thread(target=sim.run, args=(stop, args.duration))
        worker.start()
        while worker.is_alive():
            worker.join(1)
            print(f"\rpublished {sim.total:,} events", end="", file=sys.stderr, flush=True)
    print("\n" + json.dumps({"published": dict(sim.published)}))
    return 0


def _backfill(args: argparse.Namespace, settings: Settings) -> int:
    """Publish `--backfill-days` of demand history with past event times to a running
    processor, then exit, waiting for the processor where a key's events change topic (see
    `usecases.backfill`: three short waits a day at most). It gives up when nothing is
    applied for a minute. `--rate` (default 5,000/s) caps the publishing between waits."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from rich.progress import Progress  # noqa: PLC0415

    from stockflow.adapters.kafka import admin  # noqa: PLC0415
    from stockflow.adapters.publisher import Publisher  # noqa: PLC0415
    from stockflow.adapters.signals import stop_on_signals  # noqa: PLC0415
    from stockflow.devtools.applied import AppliedWatch  # noqa: PLC0415
    from stockflow.devtools.backfill import history, patterns  # noqa: PLC0415
    from stockflow.entrypoints.app import migrated_database  # noqa: PLC0415
    from stockflow.usecases.backfill import publish_history  # noqa: PLC0415

    keys = [f"SKU-{s:05d}@WH-{w}" for s in range(args.skus)
            for w in range(1, args.warehouses + 1)]
    days = args.backfill_days
    pats = patterns(keys, days, args.seed)
    now = datetime.now(UTC)
    first_day = (now - timedelta(days=days)).date()
    with (Publisher(settings, source="stockflow-backfill") as pub, stop_on_signals() as stop,
          migrated_database(settings) as conn, Progress(transient=True) as bar):
        watch = AppliedWatch(admin(settings), conn, settings.group_id, pub.topics.inputs)
        label = f"{len(keys):,} keys x {days} days"
        task = bar.add_task(label, total=days)

        def waiting(seconds: float, behind: int) -> None:
            bar.update(task, description=f"waiting {seconds:.0f} s for the processor to "
                                         f"apply {behind:,} events")

        def progress(at: datetime) -> None:
            bar.update(task, description=label, completed=(at.date() - first_day).days)

        done = publish_history(pub, watch, history(pats, days, now, args.seed),
                               rate=args.rate or _BACKFILL_RATE, stop=stop,
                               progress=progress, waiting=waiting)
    shares = {kind: sum(p.kind == kind for p in pats.values()) for kind in ("smooth",
                                                                          "intermittent")}
    print(json.dumps({"published": dict(done.published), "keys": shares, "days": days,
                      "waits": done.waits}))
    return 0


def _traffic_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=float, default=None,
                   help=f"offered events per second (default {_LIVE_RATE:,.0f}; "
                        f"{_BACKFILL_RATE:,.0f} for --backfill-days)")
    p.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    p.add_argument("--skus", type=int, default=2000, help="SKUs, in each of 3 warehouses")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stockflow", description=__doc__)
    p.add_argument("--log-level", default=os.environ.get("STOCKFLOW_LOG_LEVEL", "INFO"))
    p.add_argument("--log-format", choices=["json", "text"],
                   default=os.environ.get("STOCKFLOW_LOG_FORMAT"),
                   help="json: one object per line; text: lines with time and level "
                        "(default: json, or plain sentences when stderr is a terminal)")
    sub = p.add_subparsers(dest="command", required=True)

    topics = sub.add_parser("topics", help="manage Kafka topics").add_subparsers(
        dest="action", required=True)
    create = topics.add_parser("create", help="create the contract's topics if missing")
    create.add_argument("--partitions", type=int, default=6)
    create.add_argument("--replication-factor", type=int, default=1)
    create.set_defaults(func=cmd_topics_create)

    db = sub.add_parser("db", help="manage the database").add_subparsers(
        dest="action", required=True)
    db.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_db_migrate)

    sub.add_parser("process", help="run the stock processor").set_defaults(func=cmd_process)
    sub.add_parser("coordinate", help="run the order coordinator (whole orders: allocation, "
                   "all lines or none)").set_defaults(func=cmd_coordinate)

    pub = sub.add_parser("publish", help="publish events from a JSON-lines file")
    pub.add_argument("file")
    pub.set_defaults(func=cmd_publish)

    stock = sub.add_parser("stock", help="show a key's stock")
    stock.add_argument("key", metavar="SKU@WH")
    stock.add_argument("--json", action="store_true")
    stock.set_defaults(func=cmd_stock)

    up = sub.add_parser("up", help="local Kafka + Postgres, topics, migrations, processor")
    up.add_argument("--partitions", type=int, default=6)
    up.add_argument("--replication-factor", type=int, default=1)
    up.add_argument("--simulate", action="store_true",
                    help="drive the processor with simulated traffic and show a live view")
    up.add_argument("--refresh", type=float, default=1.0, help="live view refresh (s)")
    up.add_argument("--json", action="store_true",
                    help="with --simulate: the closing summary as one JSON line, for programs")
    _traffic_options(up)
    up.set_defaults(func=cmd_up)

    sim = sub.add_parser("simulate", help="publish simulated traffic")
    _traffic_options(sim)
    sim.add_argument("--no-seed", action="store_true", help="skip the opening stock receipts")
    sim.add_argument("--backfill-days", type=int, default=0, metavar="N",
                     help="instead of live traffic, publish N days of demand history with "
                          "past event times (weekly seasonality, trend, promotions, "
                          "intermittent slow movers) to a running processor, waiting for "
                          "it to apply each day's receipts before the shipments they "
                          "stock (and so on), then exit")
    sim.add_argument("--warehouses", type=int, default=3, help="with --backfill-days")
    sim.add_argument("--seed", type=int, default=1, help="with --backfill-days")
    sim.set_defaults(func=cmd_simulate)

    from stockflow.entrypoints import (  # noqa: PLC0415
        api_cli,
        dlq_cli,
        forecast_cli,
        import_cli,
        report_cli,
        warehouses_cli,
        webhooks_cli,
    )
    webhooks_cli.register(sub)
    api_cli.register(sub)
    import_cli.register(sub)
    report_cli.register(sub)
    forecast_cli.register(sub)
    warehouses_cli.register(sub)
    dlq_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the `stockflow` command line; the process's exit status."""
    exit_if_stopped_while_starting()
    args = parser().parse_args(argv)
    configure(args.log_level, args.log_format)
    command: Command = args.func
    try:
        # read once, here: every command and what it wires get this one object
        return command(args, Settings())
    except StockflowError as exc:  # a known refusal: the message says it all
        log.error("%s", exc)  # noqa: TRY400 - no traceback for a refusal
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the command took signals over: it is stopped
        return 130
    except Exception as exc:
        log.critical("stopped by an unexpected error: %s", exc, exc_info=exc)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
