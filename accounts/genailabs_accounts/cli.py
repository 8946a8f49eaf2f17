"""`python -m genailabs_accounts users ...`: accounts from a shell; passwords from a prompt or stdin, never argv."""

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from genailabs_accounts.config import get_settings
from genailabs_accounts.errors import AccountError, BadAccountInput
from genailabs_accounts.models import Account, AccountListing
from genailabs_accounts.store import AccountStore

PROG = "python -m genailabs_accounts"
# set-limits changes only what it is given; `none` (not this) clears a limit.
_UNSET = object()


def _password(args: argparse.Namespace, prompt: str = "Password") -> str:
    """From stdin with --password-stdin, else typed twice at a terminal: never an argument (process lists)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise BadAccountInput("no terminal to ask for the password: pipe it in with --password-stdin")
    first = getpass.getpass(f"{prompt}: ")
    if getpass.getpass(f"{prompt} again: ") != first:
        raise BadAccountInput("the two passwords differ")
    return first


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "") else int(text)


def _optional_float(text: str) -> float | None:
    return None if text.lower() in ("none", "") else float(text)


def _models(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _describe(account: Account) -> str:
    state = "disabled" if account.disabled else "active"
    return f"{account.login} ({account.role}, {state}, id {account.id})"


def _limits(listing: AccountListing) -> str:
    models = ",".join(listing.models) or "all models"
    rpm = "-" if listing.rpm is None else str(listing.rpm)
    budget = "-" if listing.max_budget is None else f"{listing.max_budget:g}"
    return f"models {models}; rpm {rpm}; budget {budget}; spent {listing.spend:.4f}"


def cmd_create(store: AccountStore, args: argparse.Namespace) -> None:
    password = _password(args)
    made = store.create_account(
        args.login, password, name=args.name, role=args.role, models=_models(args.models), rpm=args.rpm,
        max_budget=args.max_budget,
    )  # fmt: skip
    print(f"created {_describe(made)}")


def cmd_list(store: AccountStore, args: argparse.Namespace) -> None:
    listings = store.list_accounts()
    if args.json:
        print(json.dumps([listing.model_dump(mode="json") for listing in listings], indent=2))
        return
    if not listings:
        print("no accounts yet: `python -m genailabs_accounts users create LOGIN --role admin`")
    for listing in listings:
        seen = f"{listing.last_seen_at:%Y-%m-%d %H:%M}" if listing.last_seen_at else "never"
        print(f"{_describe(listing)}  last seen {seen}  {_limits(listing)}")


def cmd_disable(store: AccountStore, args: argparse.Namespace) -> None:
    print(f"disabled {_describe(store.set_disabled(store.by_login(args.login).id, True))}")


def cmd_enable(store: AccountStore, args: argparse.Namespace) -> None:
    print(f"enabled {_describe(store.set_disabled(store.by_login(args.login).id, False))}")


def cmd_reset_password(store: AccountStore, args: argparse.Namespace) -> None:
    account = store.by_login(args.login)
    store.reset_password(account.id, _password(args, "New password"))
    print(f"new password set for {account.login}; its sign-ins ended")


def cmd_set_role(store: AccountStore, args: argparse.Namespace) -> None:
    print(f"role set: {_describe(store.set_role(store.by_login(args.login).id, args.role))}")


def cmd_set_limits(store: AccountStore, args: argparse.Namespace) -> None:
    account = store.by_login(args.login)
    [current] = [listing for listing in store.list_accounts() if listing.id == account.id]
    listing = store.set_limits(
        account.id,
        current.models if args.models is None else _models(args.models),
        current.rpm if args.rpm is _UNSET else args.rpm,
        current.max_budget if args.max_budget is _UNSET else args.max_budget,
    )
    print(f"{listing.login}: {_limits(listing)}")


def cmd_ensure_admin(store: AccountStore, args: argparse.Namespace) -> None:
    password = _password(args) if args.password_stdin else None
    admin, generated = store.ensure_first_admin(args.login, password)
    if generated is None:
        print(f"admin account: {_describe(admin)}")
        return
    # Printed this once and kept nowhere: only its argon2 hash is stored.
    print(f"created the first admin {admin.login}; one-time password (shown only now): {generated}")


COMMANDS: dict[str, Callable[[AccountStore, argparse.Namespace], None]] = {
    "create": cmd_create,
    "list": cmd_list,
    "disable": cmd_disable,
    "enable": cmd_enable,
    "reset-password": cmd_reset_password,
    "set-role": cmd_set_role,
    "set-limits": cmd_set_limits,
    "ensure-admin": cmd_ensure_admin,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    users = groups.add_parser("users", help="people who may sign in").add_subparsers(dest="command", required=True)
    stdin_help = "read the password from the first line of stdin instead of a prompt"

    create = users.add_parser("create", help="a new account and its proxy key")
    create.add_argument("login")
    create.add_argument("--name", default="")
    create.add_argument("--role", choices=["admin", "user"], default="user")
    create.add_argument("--models", default="", help="comma-separated models allowed (default: all)")
    create.add_argument("--rpm", type=int, default=None, help="requests per minute (default: unlimited)")
    create.add_argument("--max-budget", type=float, default=None, help="spend limit (default: none)")
    create.add_argument("--password-stdin", action="store_true", help=stdin_help)

    users.add_parser("list", help="every account with its limits").add_argument("--json", action="store_true")
    for name, text in (("disable", "end its sign-ins and revoke its proxy key"), ("enable", "allow it again")):
        users.add_parser(name, help=text).add_argument("login")

    reset = users.add_parser("reset-password", help="set a new password; ends its sign-ins")
    reset.add_argument("login")
    reset.add_argument("--password-stdin", action="store_true", help=stdin_help)

    role = users.add_parser("set-role", help="admin or user")
    role.add_argument("login")
    role.add_argument("role", choices=["admin", "user"])

    limits = users.add_parser("set-limits", help="models, rpm and budget on the person's proxy key")
    limits.add_argument("login")
    limits.add_argument("--models", default=None, help="comma-separated; '' for every model")
    limits.add_argument("--rpm", type=_optional_int, default=_UNSET, help="a number, or none")
    limits.add_argument("--max-budget", type=_optional_float, default=_UNSET, help="a number, or none")

    admin = users.add_parser("ensure-admin", help="make the first admin unless one exists")
    admin.add_argument("--login", default="admin")
    admin.add_argument("--password-stdin", action="store_true", help=stdin_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The pool retries a down server in the background and logs each try; the command says it once.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    try:
        settings = get_settings()
    except ValidationError as exc:
        names = ", ".join(str(error["loc"][0]).upper() for error in exc.errors())
        print(f"{PROG}: invalid setting {names}", file=sys.stderr)
        return 2
    store = AccountStore(
        settings.database_url.get_secret_value(), settings.hub_database_url.get_secret_value(), settings.policy()
    )
    try:
        COMMANDS[args.command](store, args)
    except AccountError as exc:
        print(f"{PROG} users {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        store.close()
    return 0
