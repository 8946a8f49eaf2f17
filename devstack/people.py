"""People for `make up`: the genailabs migrations and the first admin, whose one-time password is printed once."""

import psycopg

from devstack.config import StackSettings
from devstack.services import app_database_url
from genailabs_accounts.errors import AccountError
from genailabs_accounts.migrations import migrate
from genailabs_accounts.store import AccountStore


def ensure_people(settings: StackSettings) -> str | None:
    """Migrates genailabs and makes the first admin unless one exists; what to tell the operator, if anything."""
    url = app_database_url(settings)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            migrate(conn)
    except psycopg.Error as exc:
        raise RuntimeError(f"could not migrate the genailabs database: {str(exc).strip().splitlines()[-1]}") from None
    store = AccountStore(url, settings.database_url)
    try:
        given = settings.admin_password.get_secret_value() if settings.admin_password else None
        existed = store.first_admin() is not None
        admin, generated = store.ensure_first_admin(settings.admin_login, given)
    except AccountError as exc:
        raise RuntimeError(f"could not make the first admin account: {exc}") from None
    finally:
        store.close()
    if generated is not None:
        # Shown here once and kept nowhere: only its argon2 hash is stored.
        return (
            f"first admin account: {admin.login}  one-time password: {generated}\n"
            "  (shown only now; change it with `.venv/bin/python -m genailabs_accounts users reset-password "
            f"{admin.login}`)"
        )
    return None if existed else f"first admin account: {admin.login} (password from ADMIN_PASSWORD)"
