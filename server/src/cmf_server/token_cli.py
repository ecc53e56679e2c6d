"""``cmf-server token create|list|revoke``: the gateway's API tokens (docs/access.md), in the
database ``cmf-server up`` uses: ``GATEWAY_DATABASE_URL`` or ``DATABASE_URL`` when set, else
the data dir's embedded PostgreSQL (started, or shared with a server running on it). A token
is printed once, when it is created; only its digest is kept."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SCOPES = ("read", "write", "admin")


def add_parser(commands: Any) -> None:
    """The ``token`` command and its actions, on ``cmf-server``'s subcommands."""
    token = commands.add_parser("token", help="create, list or revoke API tokens")
    actions = token.add_subparsers(dest="action", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="the embedded server's data dir (when no DATABASE_URL is set)",
        )
        parser.add_argument("--json", action="store_true", help="answer in JSON")

    create = actions.add_parser("create", help="make a token (printed once)")
    create.add_argument("--name", required=True, help="what the token is for")
    create.add_argument("--scope", required=True, choices=SCOPES)
    create.add_argument(
        "--pipeline-prefix", default=None, help="see only pipelines whose names start with it"
    )
    create.add_argument(
        "--expires", default="never", help="90d, 12h, 30m, 45s, 2w, or never (the default)"
    )
    common(create)
    listing = actions.add_parser("list", help="every token, revoked and expired ones too")
    common(listing)
    revoke = actions.add_parser("revoke", help="revoke a token, on every gateway within 1 s")
    revoke.add_argument("id", help="the token's id (as `token list` shows it)")
    common(revoke)


def main(args: argparse.Namespace) -> int:
    import asyncio

    from cmf_common.logging import configure_logging
    from cmf_gateway.auth.tokens import parse_expiry

    configure_logging("WARNING", json=False)
    if args.action == "create":
        try:
            parse_expiry(args.expires)
        except ValueError as exc:
            print(f"cmf-server token create: {exc}", file=sys.stderr)
            return 2
        if args.pipeline_prefix == "":
            print("cmf-server token create: an empty --pipeline-prefix", file=sys.stderr)
            return 2
    return asyncio.run(_run(args))


def _database_url(data_dir: Path | None) -> str:
    from cmf_gateway.settings import GatewaySettings
    from cmf_server.settings import ServerSettings

    configured = GatewaySettings().database_url
    if configured is not None:
        return configured.get_secret_value()
    from cmf_server import embedded_postgres

    where = data_dir if data_dir is not None else ServerSettings().data_dir
    uri, _server = embedded_postgres.start(where.resolve())
    return uri


async def _run(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from cmf_common.db import service_pool
    from cmf_gateway.auth.routes import TokenOut
    from cmf_gateway.auth.store import MIGRATIONS, TokenStore
    from cmf_gateway.auth.tokens import parse_expiry
    from cmf_gateway.settings import GatewaySettings

    settings = GatewaySettings(
        database_url=SecretStr(_database_url(args.data_dir)),
        database_pool_min=1,
        database_pool_max=1,
    )
    async with service_pool(settings, MIGRATIONS, application_name="cmf-server token") as pool:
        store = TokenStore(pool)
        if args.action == "create":
            token, record = await store.create(
                args.name,
                args.scope,
                pipeline_prefix=args.pipeline_prefix,
                expires_in=parse_expiry(args.expires),
            )
            if args.json:
                out = TokenOut.of(record).model_dump(mode="json")
                print(json.dumps({**out, "token": token}))
            else:
                print(token)
                prefix = record.pipeline_prefix
                expires = record.expires_at.isoformat() if record.expires_at else "never"
                print(
                    f"token {record.id} ({record.name!r}, {record.scope}"
                    f"{f', pipelines {prefix!r}*' if prefix else ''}, expires {expires}):"
                    " shown this once, keep it now",
                    file=sys.stderr,
                )
            return 0
        if args.action == "list":
            records = [TokenOut.of(r) for r in await store.list()]
            if args.json:
                print(json.dumps([r.model_dump(mode="json") for r in records]))
            else:
                _print_table(records)
            return 0
        revoked = await store.revoke(args.id)
        if revoked is None:
            print(f"cmf-server token revoke: no token {args.id!r}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(TokenOut.of(revoked).model_dump(mode="json")))
        else:
            print(f"revoked {revoked.id} ({revoked.name!r})")
        return 0


def _print_table(records: list[Any]) -> None:
    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"

    rows = [("ID", "NAME", "SCOPE", "PREFIX", "STATE", "CREATED", "EXPIRES", "LAST USED")]
    for r in records:
        rows.append(
            (
                r.id,
                r.name,
                r.scope,
                r.pipeline_prefix or "-",
                r.state,
                when(r.created_at),
                when(r.expires_at) if r.expires_at else "never",
                when(r.last_used_at),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
