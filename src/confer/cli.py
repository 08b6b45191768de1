"""The `confer` command: serve, migrate, user create."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from confer.config import SERVICES, InsecureConfiguration, load_settings, port_for


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from confer.api.coalesce import http_protocol_class
    from confer.db.migrate import upgrade
    from confer.signaling.wire import ws_protocol_class
    from confer.workers import supervise

    if args.data_dir:
        os.environ["CONFER_DATA_DIR"] = args.data_dir
    if args.only:
        os.environ["CONFER_SERVICES"] = args.only  # the workers read it too
    try:
        settings = load_settings()
    except ValueError as exc:  # pydantic's ValidationError is one
        print(f"confer: refusing to start: {exc}", file=sys.stderr)
        return 2
    alone = len(settings.services) < len(SERVICES)
    if (args.workers > 1 or alone) and not settings.redis_url:
        what = f"--workers {args.workers}" if args.workers > 1 else f"--only {args.only}"
        print(
            f"confer: refusing to start: {what} needs CONFER_REDIS_URL. Processes find each "
            "other (and a meeting's media server) through Redis; without it a meeting would be "
            "split across processes whose participants cannot see or hear each other.",
            file=sys.stderr,
        )
        return 2
    if args.port is None:
        args.port = port_for(settings.services)
    try:
        settings.resolve_secret()  # fail fast, before binding a port
    except InsecureConfiguration as exc:
        print(f"confer: refusing to start: {exc}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not args.no_migrate:
        upgrade(settings.effective_database_url)
    ssl: dict[str, str] = {}
    if args.cert or args.key:
        if not (args.cert and args.key):
            print("confer: --cert and --key go together", file=sys.stderr)
            return 2
        ssl = {"ssl_certfile": args.cert, "ssl_keyfile": args.key}
    elif args.tls:
        from confer.tls import ensure_self_signed

        cert, key = ensure_self_signed(settings.data_dir, args.host)
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    if args.workers > 1:
        _share_metrics_between_workers(settings.data_dir / "metrics")
    scheme = "https" if ssl else "http"
    print(f"confer: serving on {scheme}://{args.host}:{args.port}", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        "confer.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # The transport cap sits above the protocol limit so that an oversized message gets
        # the signaling error 413 rather than a bare 1009 close.
        ws_max_size=max(4 * settings.ws_max_message_bytes, 1 << 20),
        ws_per_message_deflate=True,
        # Broadcast frames written once for many sockets (confer/signaling/wire.py).
        ws=ws_protocol_class(),
        # One write per response instead of one for the head and one for the body.
        http=http_protocol_class(),
        timeout_graceful_shutdown=5,
        **ssl,  # type: ignore[arg-type]
    )
    if args.workers > 1:
        return supervise(config)
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it shut down for
        return 0
    return 0 if server.started else STARTUP_FAILURE


def _share_metrics_between_workers(directory: Path) -> None:
    """prometheus-client's multiprocess mode: workers write to files that /metrics sums up.
    Files from an earlier run would add stale counts, so the directory starts empty."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _migrate(_: argparse.Namespace) -> int:
    from confer.db.migrate import upgrade

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    print("confer: database is at the latest schema", file=sys.stderr)
    return 0


def _user_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from confer.api.routes.auth import RegisterIn
    from confer.context import AppContext
    from confer.db.migrate import upgrade
    from confer.errors import AppError

    settings = load_settings()
    settings.resolve_secret()  # refuse weak production settings before touching the database
    password = args.password or os.environ.get("CONFER_NEW_USER_PASSWORD")
    if not password:
        password = getpass.getpass("Password: ")
    try:  # the same rules as POST /auth/register
        RegisterIn(
            username=args.username, email=args.email, password=password, full_name=args.full_name
        )
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "input"
            print(f"confer: invalid {field}: {err['msg']}", file=sys.stderr)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)

    async def create() -> int:
        ctx = AppContext.build(settings)
        try:
            async with ctx.db.session() as s:
                user = await ctx.accounts.register(
                    s, args.username, args.email, password, args.full_name or ""
                )
                print(f"created user {user.username} (user_id {user.id})")
            return 0
        except AppError as exc:
            details = exc.details if isinstance(exc.details, list) else [exc.details]
            print(f"confer: {exc.message}: {'; '.join(map(str, details))}", file=sys.stderr)
            return 1
        finally:
            await ctx.db.dispose()

    return asyncio.run(create())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="confer",
        description="confer: a self-hostable video-meeting platform. Settings come from "
        "CONFER_* environment variables (see the README).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="apply migrations and run the platform",
        description="Apply database migrations, then serve the REST API, the signaling "
        "WebSocket and the web client.",
    )
    serve.add_argument(
        "--host",
        default=os.environ.get("CONFER_HOST", "127.0.0.1"),
        help="address to bind (default 127.0.0.1; CONFER_HOST)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ["CONFER_PORT"]) if os.environ.get("CONFER_PORT") else None,
        help="port to bind (default 8000, or the contract's port of the one service run with "
        "--only; CONFER_PORT)",
    )
    serve.add_argument(
        "--only",
        help="the contract's services to run, comma-separated: "
        f"{','.join(SERVICES)} (default all; each alone listens on its contract port; "
        "CONFER_SERVICES)",
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS/WSS with a self-signed certificate kept in the data dir",
    )
    serve.add_argument("--cert", help="PEM certificate for HTTPS (with --key)")
    serve.add_argument("--key", help="PEM private key for HTTPS (with --cert)")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("CONFER_WORKERS", "1")),
        help="worker processes, each a node of its own (default 1; more need CONFER_REDIS_URL)",
    )
    serve.add_argument("--data-dir", help="overrides CONFER_DATA_DIR")
    serve.add_argument("--no-migrate", action="store_true", help="skip applying migrations")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="log every request",
    )
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser(
        "migrate",
        help="apply database migrations",
        description="Bring the database at CONFER_DATABASE_URL (or the "
        "SQLite file in CONFER_DATA_DIR) to the latest schema.",
    )
    migrate.set_defaults(func=_migrate)

    user = sub.add_parser("user", help="manage users", description="Manage user accounts.")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser(
        "create",
        help="create a user account",
        description="Create an account (the password is asked for "
        "unless --password or CONFER_NEW_USER_PASSWORD is given).",
    )
    create.add_argument("username")
    create.add_argument("email")
    create.add_argument("--full-name", default="")
    create.add_argument("--password")
    create.set_defaults(func=_user_create)

    # The load tool parses its own options (`confer loadtest --help`).
    sub.add_parser(
        "loadtest",
        help="load the SFU with lightweight bot participants",
        description="Publish pre-encoded media from bots and count what the SFU forwards; "
        "see `confer loadtest --help`.",
        add_help=False,
    )
    return p


def _loadtest(argv: list[str]) -> int:
    from confer.sfu.loadtest import main as loadtest_main

    return int(loadtest_main(argv))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["loadtest"]:
        return _loadtest(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InsecureConfiguration as exc:
        print(f"confer: refusing to start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
