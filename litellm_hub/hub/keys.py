"""Virtual-key administration: python -m hub.keys create|list|revoke|mark-service|usage.

It acts with the master key's authority, so it needs LITELLM_MASTER_KEY (environment, litellm_hub/.env,
or the seed's value in .env.example), and it talks to the hub's PostgreSQL directly rather than through
the proxy: the proxy runs without LiteLLM's key database and so has no key-management API, and an
administrator can still revoke a key while the proxy is down.
"""

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from hub.access import USER_HEADER
from hub.config import HubSettings, get_settings
from hub.errors import AdminError, DatabaseUnavailable
from hub.keystore import KeyListing, KeyStore, UsageLine, connect, parse_duration
from hub.records import KeyRecord


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, error['loc'])).upper()}: {error['msg']}" for error in exc.errors())
        print(f"hub.keys: bad settings ({problems}); key administration needs LITELLM_MASTER_KEY", file=sys.stderr)
        return 2
    try:
        with connect(settings.hub_database_url.get_secret_value(), settings.hub_db_connect_timeout) as conn:
            return int(args.run(KeyStore(conn), args, settings))
    except DatabaseUnavailable as exc:
        print(f"hub.keys: {exc}", file=sys.stderr)
        return 2
    except AdminError as exc:
        print(f"hub.keys: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hub.keys", description="Administer the hub's virtual keys.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--alias", required=True, help="a name for the key, unique among active keys")
    create.add_argument("--models", default="", help="comma-separated models the key may use (default: all)")
    create.add_argument("--max-budget", type=float, help="USD the key may spend in total")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--expires-in", help="lifetime, e.g. 12h or 30d (default: never expires)")
    create.add_argument(
        "--service", action="store_true", help=f"a service key, which may act for a person with {USER_HEADER}"
    )
    create.set_defaults(run=run_create)

    listing = commands.add_parser("list", help="list keys (never their secrets)")
    listing.set_defaults(run=run_list)

    revoke = commands.add_parser("revoke", help="revoke a key by alias or prefix")
    revoke.add_argument("selector", help="the key's alias, or its prefix as shown by `list`")
    revoke.set_defaults(run=run_revoke)

    service = commands.add_parser("mark-service", help="make an existing key a service key")
    service.add_argument("alias", help="the active key's alias")
    service.set_defaults(run=run_mark_service)

    usage = commands.add_parser("usage", help="requests, tokens, cost and latency per key and model")
    usage.add_argument("--since", default="24h", help="period to report, e.g. 1h, 7d (default: 24h)")
    usage.add_argument("--alias", help="only this key")
    usage.set_defaults(run=run_usage)
    return parser


def run_create(store: KeyStore, args: argparse.Namespace, settings: HubSettings) -> int:
    models = [model.strip() for model in args.models.split(",") if model.strip()]
    expires_at = datetime.now(UTC) + parse_duration(args.expires_in) if args.expires_in else None
    metadata = {"service": True} if args.service else None
    key, record = store.create(args.alias, models, args.max_budget, args.rpm, args.tpm, expires_at, metadata)
    print(key)
    kind = "service key" if record.is_service else "key"
    print(
        f"created {kind} '{record.alias}' ({record.key_prefix}...): models {', '.join(models) or 'all'}, "
        f"budget {_money(record.max_budget)}, rpm {_limit(record.rpm_limit)}, tpm {_limit(record.tpm_limit)}, "
        f"expires {_when(record.expires_at)}. Store the key now: it is not shown again.",
        file=sys.stderr,
    )
    return 0


def run_list(store: KeyStore, args: argparse.Namespace, settings: HubSettings) -> int:
    now = datetime.now(UTC)
    header = ("PREFIX", "ALIAS", "STATUS", "HOLDER", "MODELS", "SPENT", "BUDGET", "RPM", "TPM", "EXPIRES", "CREATED")
    print_table(header, [_listing_cells(listing, now) for listing in store.all_keys()])
    return 0


def run_revoke(store: KeyStore, args: argparse.Namespace, settings: HubSettings) -> int:
    record = store.revoke(args.selector)
    ttl = settings.hub_key_cache_ttl
    print(f"revoked '{record.alias}' ({record.key_prefix}...); proxies refuse it within {ttl:g} s")
    return 0


def run_mark_service(store: KeyStore, args: argparse.Namespace, settings: HubSettings) -> int:
    record = store.mark_service(args.alias)
    ttl = settings.hub_key_cache_ttl
    print(f"'{record.alias}' ({record.key_prefix}...) is now a service key; proxies see it within {ttl:g} s")
    return 0


def run_usage(store: KeyStore, args: argparse.Namespace, settings: HubSettings) -> int:
    since = datetime.now(UTC) - parse_duration(args.since)
    header = ("KEY", "MODEL", "REQUESTS", "FAILED", "PROMPT TOK", "COMPL TOK", "COST", "P50 MS", "P50 TTFT MS")
    lines = store.usage(since, args.alias)
    print(f"usage since {since:%Y-%m-%d %H:%M} UTC")
    print_table(header, [_usage_cells(line) for line in lines])
    return 0


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _listing_cells(listing: KeyListing, now: datetime) -> list[str]:
    record = listing.record
    return [
        record.key_prefix,
        record.alias,
        listing.status(now),
        _holder(listing.record),
        ",".join(record.models) or "all",
        f"${listing.spend:.4f}",
        _money(record.max_budget),
        _limit(record.rpm_limit),
        _limit(record.tpm_limit),
        _when(record.expires_at),
        _when(record.created_at),
    ]


def _usage_cells(line: UsageLine) -> list[str]:
    return [
        line.alias,
        line.model,
        str(line.requests),
        str(line.failures),
        str(line.prompt_tokens),
        str(line.completion_tokens),
        f"${line.cost:.4f}",
        _ms(line.median_latency_ms),
        _ms(line.median_ttft_ms),
    ]


def _holder(record: KeyRecord) -> str:
    """`service` for a service key, the person's login for theirs, `-` for a team key."""
    if record.is_service:
        return "service"
    return record.login or record.user_id or "-"


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


def _when(value: datetime | None) -> str:
    return "never" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    raise SystemExit(main())
