"""The ``ticketing`` command line: serve, and the operator's tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError


def _settings(args: argparse.Namespace) -> object:
    from engine.settings import Settings

    overrides = {k: v for k, v in vars(args).items() if k in ("data_dir", "host", "port") and v}
    return Settings(**overrides)


def _describe(error: ValidationError) -> str:
    """The fields and reasons, never the values (a refused key must not be echoed)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    )


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from engine.bootstrap import StartupError, build_runtime
    from engine.settings import Settings

    try:
        settings = _settings(args)
        assert isinstance(settings, Settings)
        runtime = build_runtime(settings)
    except ValidationError as e:
        print(f"ticketing: invalid configuration: {_describe(e)}", file=sys.stderr)
        return 2
    except StartupError as e:
        print(f"ticketing: {e}", file=sys.stderr)
        return 2
    if runtime.admin_key_created and settings.bootstrap_admin_key:
        print("First start: an admin API key was created from TICKETING_BOOTSTRAP_ADMIN_KEY.")
    elif runtime.admin_key_created:
        print("=" * 72)
        print("First start: an admin API key was created. It is shown only once:")
        print(f"  {runtime.admin_key_created}")
        print("Use it as: Authorization: Bearer <key>")
        print("=" * 72, flush=True)
    app = create_app(runtime)
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=settings.access_log,
        )
    finally:
        runtime.close()
    return 0


def _open_runtime(args: argparse.Namespace) -> object:
    """A runtime on the data directory, without views or background work."""
    from engine.bootstrap import StartupError, build_runtime
    from engine.settings import Settings

    try:
        settings = _settings(args)
        assert isinstance(settings, Settings)
        return build_runtime(settings, start_views=False)
    except ValidationError as e:
        raise SystemExit(f"ticketing: invalid configuration: {_describe(e)}") from None
    except StartupError as e:
        raise SystemExit(f"ticketing: {e}") from None


def verify(args: argparse.Namespace) -> int:
    """Verify the whole log, one ticket, or an offline bundle; exit 1 on any break."""
    import json
    from uuid import UUID

    from cli.progress import ProgressBar
    from engine.app.audit import verify_bundle, verify_log
    from engine.app.permissions import Principal
    from engine.bootstrap import Runtime

    if args.bundle:
        try:
            bundle = json.loads(Path(args.bundle).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print(f"ticketing: cannot read bundle {args.bundle}: {e}", file=sys.stderr)
            return 2
        report = verify_bundle(bundle, args.public_key).as_dict()
    else:
        runtime = _open_runtime(args)
        assert isinstance(runtime, Runtime)
        try:
            if args.ticket:
                try:
                    ticket_id = UUID(args.ticket)
                except ValueError:
                    print(
                        f"ticketing: --ticket {args.ticket!r} is not a ticket id", file=sys.stderr
                    )
                    return 2
                auditor = Principal(id="cli", name="cli", role="auditor")
                report = runtime.desk.queries.verify_ticket(auditor, ticket_id)
            else:
                bar = ProgressBar("verify")
                report = verify_log(runtime.app.recorder, bar, args.public_key).as_dict()
                bar.finish()
        finally:
            runtime.close()
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def _open_views(runtime: object, progress: bool = True) -> object:
    from cli.progress import ProgressBar
    from engine.bootstrap import Runtime
    from engine.projections import Views

    assert isinstance(runtime, Runtime)
    app = runtime.app
    return Views(
        app.recorder,
        runtime.settings.data_dir,
        ProgressBar("views") if progress else None,
        keys=app.keys,
    )


def project(args: argparse.Namespace) -> int:
    """Keep the views current from the log, in the foreground, until SIGTERM or ^C."""
    import signal
    import threading

    from engine.bootstrap import Runtime
    from engine.projections import Views

    runtime = _open_runtime(args)
    assert isinstance(runtime, Runtime)
    views = _open_views(runtime)
    assert isinstance(views, Views)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    views.start()
    print("projecting; stop with SIGTERM or ^C", file=sys.stderr)
    try:
        while not stopping.wait(1.0):
            health = views.health()
            if health["error"]:
                print(f"ticketing: projection stopped: {health['error']}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        views.close()
        runtime.close()
    return 0


def rebuild(args: argparse.Namespace) -> int:
    """Rebuild views from the log beside the current ones, then switch to them."""
    from cli.progress import ProgressBar
    from engine.bootstrap import Runtime
    from engine.projections import Views

    runtime = _open_runtime(args)
    assert isinstance(runtime, Runtime)
    views = _open_views(runtime, progress=False)
    assert isinstance(views, Views)
    bar = ProgressBar(f"rebuild {args.view or 'all views'}")
    try:
        views.rebuild(args.view, bar)
        bar.finish()
    except ValueError as e:
        print(f"ticketing: {e}", file=sys.stderr)
        return 2
    finally:
        views.close()
        runtime.close()
    print("rebuilt; a running server switches to the new views by itself", file=sys.stderr)
    return 0


def cache_rebuild(args: argparse.Namespace) -> int:
    """Rebuild the Kafka cache, and everything derived from it, from the topic as it is
    now: the fix for a cache that diverged from its topic. The server must be stopped."""
    import shutil

    from eventsourcing.persistence import OperationalError

    from cli.progress import ProgressBar
    from engine.bootstrap import Runtime, derived_paths, kafka_environment, restrict_umask
    from engine.projections import Views
    from engine.settings import Settings
    from engine.stores.kafka.rebuild import rebuild_cache
    from engine.stores.kafka.settings import KafkaSettings
    from engine.stores.kafka.tailer import CatchUpProgress

    try:
        settings = _settings(args)
    except ValidationError as e:
        print(f"ticketing: invalid configuration: {_describe(e)}", file=sys.stderr)
        return 2
    assert isinstance(settings, Settings)
    if not settings.uses_kafka:
        print(
            "ticketing: cache rebuild is for the Kafka mode (KAFKA_BOOTSTRAP_SERVERS); "
            "the SQLite store keeps no cache of a topic",
            file=sys.stderr,
        )
        return 2
    try:
        kafka = KafkaSettings.from_env(kafka_environment(settings))
    except OSError as e:
        print(f"ticketing: {e}", file=sys.stderr)
        return 2
    restrict_umask()  # the new cache is as private as the one it replaces
    bar = ProgressBar(f"cache of {kafka.topic}")

    def shown(status: CatchUpProgress) -> None:
        end = status.end if status.end is not None else status.offset
        bar(status.offset, max(end, status.offset))

    try:
        events = rebuild_cache(kafka, shown)
        bar.finish()
    except OperationalError as e:  # in use, diverged within itself, or unreachable
        bar.finish()
        print(f"ticketing: the cache was not rebuilt (it is as it was): {e}", file=sys.stderr)
        return 1
    print(f"cache rebuilt from topic {kafka.topic!r}: {events} events", file=sys.stderr)
    # Everything derived from the old cache goes, and the views are built again.
    for path in derived_paths(settings):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            for side in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{side}").unlink(missing_ok=True)
    runtime = _open_runtime(args)
    assert isinstance(runtime, Runtime)
    try:
        views = _open_views(runtime)
        assert isinstance(views, Views)
        try:
            views.catch_up()
        finally:
            views.close()
    finally:
        runtime.close()
    print("views rebuilt; start the server again", file=sys.stderr)
    return 0


def _instant(value: str | None, name: str) -> object:
    from datetime import datetime

    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"ticketing: --{name} {value!r} is not an ISO 8601 time") from None
    if instant.tzinfo is None:
        raise SystemExit(f"ticketing: --{name} needs a time zone offset, e.g. Z")
    return instant


def export(args: argparse.Namespace) -> int:
    """Export the audit history (JSON lines or CSV, digest trailer) or a ticket's
    replay bundle (events, chains, checkpoint, proofs)."""
    from uuid import UUID

    from cli.progress import ProgressBar
    from engine.app.audit import build_bundle, dump_bundle
    from engine.bootstrap import Runtime, private_open

    ticket_id = None
    if args.ticket:
        try:
            ticket_id = UUID(args.ticket)
        except ValueError:
            print(f"ticketing: --ticket {args.ticket!r} is not a ticket id", file=sys.stderr)
            return 2
    if not args.bundle:
        return _export_history(args, ticket_id)
    if ticket_id is None:
        print("ticketing: --bundle needs --ticket", file=sys.stderr)
        return 2
    runtime = _open_runtime(args)
    assert isinstance(runtime, Runtime)
    try:
        bar = ProgressBar("export")
        bundle = build_bundle(runtime.app, ticket_id, bar)
        bar.finish()
    finally:
        runtime.close()
    if not bundle["events"]:
        print(f"ticketing: no ticket {ticket_id} in this log", file=sys.stderr)
        return 1
    with open(private_open(Path(args.bundle)), "w", encoding="utf-8") as out:
        out.write(dump_bundle(bundle))
    print(f"wrote {len(bundle['events'])} events of ticket {ticket_id} to {args.bundle}")
    return 0


def _export_history(args: argparse.Namespace, ticket_id: object) -> int:
    from datetime import datetime
    from uuid import UUID

    from cli.progress import ProgressBar
    from engine.app.audit import digest_trailer
    from engine.bootstrap import Runtime, private_open
    from engine.projections import Views

    start, end = _instant(args.from_, "from"), _instant(args.to, "to")
    assert start is None or isinstance(start, datetime)
    assert end is None or isinstance(end, datetime)
    assert ticket_id is None or isinstance(ticket_id, UUID)
    runtime = _open_runtime(args)
    assert isinstance(runtime, Runtime)
    views = _open_views(runtime)
    assert isinstance(views, Views)
    try:
        views.catch_up()
        lines = views.export(start, end, ticket_id, args.format)
        bar = ProgressBar("export")
        # newline="": the CSV lines end in CRLF, written as they are digested
        out = (
            open(private_open(Path(args.out)), "w", encoding="utf-8", newline="")
            if args.out
            else sys.stdout
        )
        try:
            for line in lines:
                out.write(line)
                bar(lines.count, lines.position)
            out.write(digest_trailer(args.format, lines.digest))
            bar(lines.count, lines.count)
        finally:
            if args.out:
                out.close()
        bar.finish()
    finally:
        views.close()
        runtime.close()
    print(f"sha256={lines.digest}", file=sys.stderr)
    return 0


def checkpoint(args: argparse.Namespace) -> int:
    """Record a signed checkpoint now."""
    import json

    from engine.bootstrap import Runtime

    runtime = _open_runtime(args)
    assert isinstance(runtime, Runtime)
    try:
        print(json.dumps(runtime.checkpoint(), indent=2))
    finally:
        runtime.close()
    return 0


def clock(args: argparse.Namespace) -> int:
    """Run the SLA clock and routing process alone (it may run beside `serve`)."""
    import signal
    import threading

    from engine.bootstrap import Runtime
    from engine.processes.sla_clock import SlaClockProcess, open_tracking

    runtime = _open_runtime(args)
    assert isinstance(runtime, Runtime)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        process = SlaClockProcess(
            runtime.app, runtime.clock, open_tracking(runtime.settings.data_dir)
        )
        process.run(stopping, args.interval or runtime.settings.clock_interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()
    return 0


def schemas(args: argparse.Namespace) -> int:
    from engine.stores.jsonschema import write_schemas

    for path in write_schemas(Path(args.out)) if args.out else write_schemas():
        print(path)
    return 0


def docs(args: argparse.Namespace) -> int:
    from cli.catalogue import rewrite

    changed = rewrite(Path(args.readme))
    print(f"{args.readme}: {'updated' if changed else 'up to date'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketing", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP API (embedded SQLite unless Kafka is set)")
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 8000)")
    p.set_defaults(func=serve)
    p = sub.add_parser("verify", help="recompute hash chains and checkpoints (exit 1 on a break)")
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.add_argument("--ticket", help="verify one ticket's streams only")
    p.add_argument("--bundle", help="verify an exported bundle offline (no store needed)")
    p.add_argument("--public-key", help="the checkpoint signing key you trust (base64)")
    p.set_defaults(func=verify)
    p = sub.add_parser("export", help="export the audit history, or a ticket's replay bundle")
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.add_argument("--ticket", help="one ticket only")
    p.add_argument("--from", dest="from_", help="events at or after this time (ISO 8601)")
    p.add_argument("--to", help="events before this time (ISO 8601)")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--out", help="output file (default: standard output)")
    p.add_argument("--bundle", help="write the ticket's verifiable replay bundle to this file")
    p.set_defaults(func=export)
    p = sub.add_parser("project", help="keep the views current (when serve runs without them)")
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.set_defaults(func=project)
    p = sub.add_parser("rebuild", help="rebuild views from the log, then switch to them")
    p.add_argument("view", nargs="?", choices=["queue", "audit", "reports"])
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.set_defaults(func=rebuild)
    p = sub.add_parser("cache", help="the Kafka mode's local cache of the topic")
    cache = p.add_subparsers(dest="cache_command", required=True)
    p = cache.add_parser(
        "rebuild",
        help="rebuild the cache and the views from the topic as it is now (server stopped)",
    )
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.set_defaults(func=cache_rebuild)
    p = sub.add_parser("checkpoint", help="record a signed checkpoint of every stream now")
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.set_defaults(func=checkpoint)
    p = sub.add_parser("clock", help="run the SLA clock and routing process alone")
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.add_argument("--interval", type=float, help="seconds between ticks (default 1)")
    p.set_defaults(func=clock)
    p = sub.add_parser("docs", help="regenerate the README's event, role and visibility tables")
    p.add_argument("readme", nargs="?", default="README.md")
    p.set_defaults(func=docs)
    p = sub.add_parser("schemas", help="write the event JSON Schemas")
    p.add_argument("--out", help="directory (default: the package's schemas/)")
    p.set_defaults(func=schemas)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
