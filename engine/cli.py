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
        print(f"ticketing: invalid configuration: {e}", file=sys.stderr)
        return 2
    except StartupError as e:
        print(f"ticketing: {e}", file=sys.stderr)
        return 2
    if runtime.admin_key_created:
        print("=" * 72)
        print("First start: an admin API key was created. It is shown only once:")
        print(f"  {runtime.admin_key_created}")
        print("Use it as: Authorization: Bearer <key>")
        print("=" * 72, flush=True)
    app = create_app(runtime)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    finally:
        runtime.close()
    return 0


def schemas(args: argparse.Namespace) -> int:
    from engine.jsonschema import write_schemas

    for path in write_schemas(
        Path(args.out) if args.out else None or Path(__file__).parent / "schemas"
    ):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketing", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP API (embedded SQLite unless Kafka is set)")
    p.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 8000)")
    p.set_defaults(func=serve)
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
