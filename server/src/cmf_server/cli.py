"""``cmf-server``: the one console script.

``cmf-server up`` runs the embedded server: the gateway with every service mounted in-process,
on a private PostgreSQL in the data dir unless ``DATABASE_URL`` is set.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from cmf_server import token_cli
from cmf_server.settings import ServerSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmf-server", description="CMF Server")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the embedded server (everything in one process)")
    up.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="port to listen on (default 8080)")
    up.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where data lives (default /var/lib/cmf-server as root, else "
        "~/.local/share/cmf-server)",
    )
    up.add_argument("--log-format", choices=("json", "console"), default=None)
    up.add_argument(
        "--auth", action="store_true", help="require a token of every client (as AUTH=on)"
    )

    lineage = commands.add_parser("lineage", help="rebuild or verify the lineage graph")
    lineage.add_argument("action", choices=("rebuild", "verify"))
    lineage.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the embedded server's data dir (when no DATABASE_URL is set)",
    )
    lineage.add_argument(
        "--metadata-url",
        default=None,
        help="read the export over HTTP from this metadata service or gateway",
    )

    for action, text in (
        ("export", "write everything the server holds to one NDJSON file (docs/operations.md)"),
        ("import", "restore an export into an empty server; run again to resume"),
    ):
        backup = commands.add_parser(action, help=text)
        if action == "export":
            backup.add_argument(
                "-o", "--output", default="-", help="the file to write (default: standard output)"
            )
        else:
            backup.add_argument("file", help="the export to restore")
        backup.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="the embedded server's data dir (its PostgreSQL, files and artifacts)",
        )
        backup.add_argument("--quiet", action="store_true", help="no progress bar on stderr")

    worker = commands.add_parser("worker", help="run one long-running worker of a service")
    worker.add_argument("name", choices=sorted(WORKERS), help="which worker")
    worker.add_argument("--host", default="127.0.0.1", help="address of its health and metrics")
    worker.add_argument(
        "--port",
        type=int,
        default=None,
        help="port of its /livez, /readyz and /metrics (default per worker)",
    )
    commands.add_parser(
        "migrate", help="apply every service's PostgreSQL migrations (before a rollout)"
    )
    serve = commands.add_parser("serve", help="run one service as a process of its own")
    serve.add_argument("name", choices=sorted(SERVICES), help="which service")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=None, help="port (default per service)")
    token_cli.add_parser(commands)
    return parser


# name -> (factory of its ASGI app, default port): services run as processes of their own
# (distributed mode; cmf_server.topology lists every process with its port and settings).
SERVICES: dict[str, tuple[str, int]] = {
    "gateway": ("cmf_server.distributed:gateway_app", 8080),
    "metadata": ("cmf_server.distributed:metadata_app", 8081),
    "lineage": ("cmf_server.distributed:lineage_app", 8082),
    "artifacts": ("cmf_server.distributed:artifacts_app", 8083),
    "ui": ("cmf_server.distributed:ui_app", 8084),
}

# name -> (factory of its ASGI app, default port of its health and metrics routes)
WORKERS: dict[str, tuple[str, int]] = {
    "relay": ("cmf_metadata.worker:create_relay_app", 9101),
    "lineage": ("cmf_lineage.worker:create_projector_app", 9102),
    "artifacts-relay": ("cmf_artifacts.worker:create_relay_app", 9103),
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "up":
        return _up(args)
    if args.command in ("worker", "serve"):
        return _worker(args)
    if args.command == "lineage":
        return _lineage(args)
    if args.command == "migrate":
        return _migrate()
    if args.command in ("export", "import"):
        return _backup(args)
    if args.command == "token":
        return token_cli.main(args)
    return 2


def _migrate() -> int:
    import asyncio

    from cmf_common.logging import configure_logging
    from cmf_common.settings import ServiceSettings
    from cmf_server import migrate

    common = ServiceSettings()
    configure_logging(common.log_level, json=common.log_json)
    return asyncio.run(migrate.run())


def _backup(args: argparse.Namespace) -> int:
    from cmf_common.logging import configure_logging
    from cmf_server import backup

    configure_logging("WARNING", json=ServerSettings().log_json)
    path = args.output if args.command == "export" else args.file
    return backup.run(args.command, args.data_dir, path, quiet=args.quiet)


def _lineage(args: argparse.Namespace) -> int:
    import asyncio

    from cmf_common.logging import configure_logging
    from cmf_server import lineage_admin

    settings = ServerSettings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    configure_logging("WARNING", json=settings.log_json)
    return asyncio.run(lineage_admin.run(args.action, settings.data_dir, args.metadata_url))


def _worker(args: argparse.Namespace) -> int:
    """A worker serves only its health and metrics over HTTP; its loop runs in the lifespan,
    so SIGTERM stops taking work, finishes what is in flight and closes its clients."""
    import importlib

    from cmf_common.logging import configure_logging
    from cmf_common.settings import ServiceSettings
    from cmf_server.serving import serve

    factory_path, default_port = (WORKERS if args.command == "worker" else SERVICES)[args.name]
    module, factory = factory_path.split(":")
    common = ServiceSettings()
    configure_logging(common.log_level, json=common.log_json)
    app = getattr(importlib.import_module(module), factory)()
    # The gateway refuses what it cannot route in the dialect of the path (its route table).
    table = getattr(app, "table", None)
    serve(
        app,
        common,
        host=args.host,
        port=args.port or default_port,
        dialect_of=table.dialect_of if table is not None else None,
    )
    return 0


class _Stopped(Exception):
    """SIGTERM or SIGINT reached ``cmf-server up`` (raised by :func:`_on_stop_signal`)."""


def _on_stop_signal(signum: int, _frame: object) -> None:
    """Our handler of SIGTERM and SIGINT outside uvicorn's run: before it (starting up) and
    after it, where uvicorn raises again the signal that stopped it (for SIGTERM the default
    action would kill the process before anything it started is stopped). Later signals are
    ignored, so a second Ctrl-C cannot cut the clean-up short."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise _Stopped(signum)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How long open connections may finish after a stop signal; the lifespan's shutdown is bounded
# on its own (cmf_common.service), and the embedded PostgreSQL's stop too (embedded_postgres).
GRACEFUL_SHUTDOWN_S = 10


def _up(args: argparse.Namespace) -> int:
    """Run the embedded server until SIGTERM or SIGINT; whichever arrives, in whatever state
    the server is (starting, serving, after an outage), everything it started is stopped: the
    HTTP server and the services' loops and pools by uvicorn's shutdown, then the embedded
    PostgreSQL (:func:`cmf_server.embedded_postgres.stop`). Exits 0."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)
    try:
        _serve(args)
    except _Stopped:
        pass
    finally:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        while _TENSORBOARD:
            _TENSORBOARD.pop().stop()
        _stop_embedded_postgres()
    return 0


_EMBEDDED_POSTGRES: list[object] = []  # the handle, once started (read by the clean-up)
_TENSORBOARD: list[Any] = []  # the TensorBoard process, once started


def _stop_embedded_postgres() -> None:
    if _EMBEDDED_POSTGRES:
        from cmf_server import embedded_postgres

        embedded_postgres.stop(_EMBEDDED_POSTGRES.pop())


def _serve(args: argparse.Namespace) -> None:
    from pydantic import SecretStr
    from starlette.types import ASGIApp

    from cmf_artifacts.settings import ArtifactSettings
    from cmf_common.logging import configure_logging
    from cmf_lineage.settings import LineageSettings
    from cmf_metadata.files import TENSORBOARD as TENSORBOARD_FOLDER
    from cmf_metadata.settings import MetadataSettings
    from cmf_server import tensorboard
    from cmf_server.embedded import embedded_server
    from cmf_server.serving import serve

    overrides = {
        k: v
        for k, v in {"host": args.host, "port": args.port, "data_dir": args.data_dir}.items()
        if v is not None
    }
    settings = ServerSettings(**overrides)
    if args.log_format:
        settings = settings.model_copy(update={"log_json": args.log_format == "json"})
    if args.auth:
        settings = settings.model_copy(update={"auth": "on"})
    configure_logging(settings.log_level, json=settings.log_json)

    data_dir = settings.data_dir.resolve()
    database_url: SecretStr | None = None
    where = "DATABASE_URL"
    if MetadataSettings().database_url is None:
        from cmf_server import embedded_postgres

        uri, server = embedded_postgres.start(data_dir)
        _EMBEDDED_POSTGRES.append(server)
        database_url = SecretStr(uri)
        where = str(data_dir / "postgres")
    # One PostgreSQL, one schema per service; an explicit URL of a service's own still wins.
    metadata_settings = MetadataSettings(files_dir=data_dir / "files")
    lineage_settings = LineageSettings()
    artifact_settings = ArtifactSettings(artifacts_dir=data_dir / "artifacts")
    if database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})  # the tokens'
        metadata_settings = metadata_settings.model_copy(update={"database_url": database_url})
        lineage_settings = lineage_settings.model_copy(update={"database_url": database_url})
        artifact_settings = artifact_settings.model_copy(update={"database_url": database_url})

    # TensorBoard over the uploaded logs, unless TENSORBOARD_URL names one run elsewhere.
    board = None
    if settings.tensorboard and metadata_settings.tensorboard_url is None:
        board = tensorboard.start(
            metadata_settings.files_dir / TENSORBOARD_FOLDER, data_dir / "tensorboard.log"
        )
        if board is not None:
            _TENSORBOARD.append(board)
            url = f"{tensorboard.PREFIX}/"
            metadata_settings = metadata_settings.model_copy(update={"tensorboard_url": url})
    gateway = embedded_server(
        settings,
        metadata_settings,
        lineage_settings,
        artifact_settings,
        database_shared=database_url is None,  # DATABASE_URL, not our own PostgreSQL
    )
    app: ASGIApp = gateway
    if board is not None:
        app = tensorboard.TensorBoardMount(
            gateway,
            board.url,
            dialect_of=gateway.table.dialect_of,
            guard=tensorboard.gateway_guard(gateway, settings),
        )
    scheme = "https" if settings.tls_cert_path else "http"
    auth = settings.auth_enabled(distributed=False)
    client_url = f"{scheme}://{'cmf:<token>@' if auth else ''}{settings.host}:{settings.port}"
    print(f"CMF Server listening on {scheme}://{settings.host}:{settings.port}", file=sys.stderr)
    print(f"  data: {where}", file=sys.stderr)
    if auth:
        print("  auth: on (tokens: cmf-server token create --name N --scope S)", file=sys.stderr)
    print(
        f"  point the cmf client at it: cmf init ... --cmf-server-url {client_url}",
        file=sys.stderr,
        flush=True,
    )
    if board is not None:
        print(
            f"  TensorBoard: {scheme}://{settings.host}:{settings.port}/tensorboard/",
            file=sys.stderr,
        )
    serve(
        app,
        settings,
        host=settings.host,
        port=settings.port,
        dialect_of=gateway.table.dialect_of,
        graceful_shutdown_s=GRACEFUL_SHUTDOWN_S,
    )


if __name__ == "__main__":
    sys.exit(main())
