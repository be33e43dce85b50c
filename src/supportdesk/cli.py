"""The ``supportdesk`` command: serve, db upgrade/grant/check, api-key create, openapi."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from supportdesk.config import get_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from supportdesk import migrate

    settings = get_settings()
    if settings.should_auto_migrate:
        migrate.upgrade(settings.database_url)
    uvicorn.run(
        "supportdesk.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        log_level=settings.log_level,
        # The service writes its own JSON access line per request.
        access_log=False,
        proxy_headers=True,
    )
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from supportdesk import migrate
    from supportdesk.db_grants import GrantError

    settings = get_settings()
    try:
        migrate.upgrade(settings.database_url, args.revision, app_role=settings.database_app_role)
    except GrantError as exc:
        print(f"supportdesk: {exc}", file=sys.stderr)
        return 1
    return 0


def _db_grant(_args: argparse.Namespace) -> int:
    from supportdesk import migrate
    from supportdesk.db_grants import GrantError

    settings = get_settings()
    if settings.database_app_role is None:
        print("supportdesk: set SUPPORTDESK_DATABASE_APP_ROLE to the runtime role", file=sys.stderr)
        return 2
    try:
        migrate.grant(settings.database_url, settings.database_app_role)
    except GrantError as exc:
        print(f"supportdesk: {exc}", file=sys.stderr)
        return 1
    return 0


def _db_check(_args: argparse.Namespace) -> int:
    from supportdesk import migrate

    migrate.check(get_settings().database_url)
    return 0


async def _create_key(name: str, role: str, customer_id: str | None) -> str:
    from supportdesk.api_keys.schemas import ApiKeyCreate
    from supportdesk.api_keys.service import ApiKeyService
    from supportdesk.db import build_engine, build_sessionmaker

    data = ApiKeyCreate.model_validate(
        {"name": name, "role": role, "customer_id": customer_id}, strict=False
    )
    engine = build_engine(get_settings())
    try:
        async with build_sessionmaker(engine).begin() as session:
            issued = await ApiKeyService(session).issue_key(data, issued_by=None)
            return issued.secret
    finally:
        await engine.dispose()


def _api_key_create(args: argparse.Namespace) -> int:
    from supportdesk import migrate
    from supportdesk.errors import AppError

    settings = get_settings()
    if settings.should_auto_migrate:
        migrate.upgrade(settings.database_url)
    name = args.name or f"{args.role} key (command line)"
    try:
        secret = asyncio.run(_create_key(name, args.role, args.customer_id))
    except ValidationError as exc:
        print(f"supportdesk: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    except AppError as exc:
        print(f"supportdesk: {exc.detail}", file=sys.stderr)
        return 1
    # The key alone on stdout, so that `KEY=$(supportdesk api-key create …)` works.
    print(secret)
    return 0


def _openapi(_args: argparse.Namespace) -> int:
    from supportdesk.main import create_app

    print(json.dumps(create_app().openapi(), indent=2, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supportdesk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(func=_serve)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply the migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(func=_db_upgrade)
    grant = db_commands.add_parser(
        "grant", help="grant SUPPORTDESK_DATABASE_APP_ROLE least privilege (PostgreSQL)"
    )
    grant.set_defaults(func=_db_grant)
    check = db_commands.add_parser("check", help="fail if models and migrations disagree")
    check.set_defaults(func=_db_check)

    api_key = commands.add_parser("api-key", help="API keys")
    key_commands = api_key.add_subparsers(dest="key_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it")
    create.add_argument(
        "--role", required=True, choices=["admin", "agent", "integration", "customer"]
    )
    create.add_argument("--customer-id", help="the customer a `customer` key is bound to")
    create.add_argument("--name", help="a label for the key")
    create.set_defaults(func=_api_key_create)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.set_defaults(func=_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
