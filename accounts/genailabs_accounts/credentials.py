"""Sign-in tokens and personal API keys: made with `secrets`, stored only as sha256, resolved to an account."""

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg

from genailabs_accounts.errors import NotSignedIn

SESSION_PREFIX = "gls_"
API_KEY_PREFIX = "glk_"
# token_urlsafe(32) is 43 characters; anything much longer is not one of ours and is not hashed.
MAX_CREDENTIAL = 100
KEY_PREFIX_CHARS = len(API_KEY_PREFIX) + 6
# last_seen_at / last_used_at are written at most this often per credential: a busy client costs no writes.
TOUCH_EVERY = "1 minute"
ACCOUNT_COLUMNS = "a.id::text AS id, a.login, a.name, a.role, a.disabled, a.created_at, a.last_seen_at"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """sha256 hex: enough for a 256-bit random token, which needs no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    conn: psycopg.Connection[dict[str, Any]], account_id: str, idle_minutes: int, keep: int
) -> tuple[str, datetime]:
    """A new sign-in token for the account (only its hash is stored) and when it expires if left idle."""
    token = new_token(SESSION_PREFIX)
    row = conn.execute(
        "INSERT INTO account_sessions (token_hash, account_id) VALUES (%s, %s) RETURNING last_seen_at",
        (token_hash(token), account_id),
    ).fetchone()
    assert row is not None
    # Bounded per person: idle sign-ins and the oldest beyond `keep` end.
    conn.execute(
        """DELETE FROM account_sessions WHERE account_id = %(id)s
           AND (last_seen_at < now() - %(idle)s * interval '1 minute' OR token_hash NOT IN
                (SELECT token_hash FROM account_sessions WHERE account_id = %(id)s
                 ORDER BY last_seen_at DESC LIMIT %(keep)s))""",
        {"id": account_id, "idle": idle_minutes, "keep": keep},
    )
    return token, row["last_seen_at"] + timedelta(minutes=idle_minutes)


def resolve(conn: psycopg.Connection[dict[str, Any]], credential: str, idle_minutes: int) -> dict[str, Any]:
    """The account row a `gls_`/`glk_` credential belongs to; NotSignedIn with the reason otherwise."""
    if len(credential) > MAX_CREDENTIAL or not credential.startswith((SESSION_PREFIX, API_KEY_PREFIX)):
        raise NotSignedIn("not a GenAILabs sign-in token or API key")
    digest = token_hash(credential)
    if credential.startswith(SESSION_PREFIX):
        row = _resolve_session(conn, digest, idle_minutes)
    else:
        row = _resolve_api_key(conn, digest)
    if row["disabled"]:
        raise NotSignedIn("this account is disabled")
    # One round trip for most requests: the timestamps are written only when a minute old.
    if row["touch_credential"]:
        conn.execute(_TOUCH_SESSION if credential.startswith(SESSION_PREFIX) else _TOUCH_API_KEY, (digest,))
    if row["touch_account"]:
        conn.execute("UPDATE accounts SET last_seen_at = now() WHERE id = %s", (row["id"],))
    return row


_TOUCH_SESSION = "UPDATE account_sessions SET last_seen_at = now() WHERE token_hash = %s"
_TOUCH_API_KEY = "UPDATE account_api_keys SET last_used_at = now() WHERE key_hash = %s"
_ACCOUNT_STALE = f"(a.last_seen_at IS NULL OR a.last_seen_at < now() - interval '{TOUCH_EVERY}') AS touch_account"


def _resolve_session(conn: psycopg.Connection[dict[str, Any]], digest: str, idle_minutes: int) -> dict[str, Any]:
    row = conn.execute(
        f"""SELECT {ACCOUNT_COLUMNS}, {_ACCOUNT_STALE},
                   s.last_seen_at < now() - %s * interval '1 minute' AS expired,
                   s.last_seen_at < now() - interval '{TOUCH_EVERY}' AS touch_credential
            FROM account_sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = %s""",
        (idle_minutes, digest),
    ).fetchone()
    if row is None:
        raise NotSignedIn("unknown or ended sign-in session: sign in again")
    if row["expired"]:
        conn.execute("DELETE FROM account_sessions WHERE token_hash = %s", (digest,))
        raise NotSignedIn(f"the sign-in session expired after {idle_minutes} minutes idle: sign in again")
    return row


def _resolve_api_key(conn: psycopg.Connection[dict[str, Any]], digest: str) -> dict[str, Any]:
    row = conn.execute(
        f"""SELECT {ACCOUNT_COLUMNS}, {_ACCOUNT_STALE}, k.revoked_at,
                   (k.last_used_at IS NULL OR k.last_used_at < now() - interval '{TOUCH_EVERY}') AS touch_credential
            FROM account_api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = %s""",
        (digest,),
    ).fetchone()
    if row is None:
        raise NotSignedIn("unknown API key")
    if row["revoked_at"] is not None:
        raise NotSignedIn("this API key was revoked")
    return row


def end_session(conn: psycopg.Connection[dict[str, Any]], token: str) -> None:
    if len(token) <= MAX_CREDENTIAL:
        conn.execute("DELETE FROM account_sessions WHERE token_hash = %s", (token_hash(token),))


def end_all_sessions(conn: psycopg.Connection[dict[str, Any]], account_id: str) -> None:
    conn.execute("DELETE FROM account_sessions WHERE account_id = %s", (account_id,))


def new_api_key(conn: psycopg.Connection[dict[str, Any]], account_id: str, name: str) -> tuple[str, dict[str, Any]]:
    """A personal API key (returned once) and its public row."""
    key = new_token(API_KEY_PREFIX)
    row = conn.execute(
        """INSERT INTO account_api_keys (id, account_id, name, key_hash, key_prefix) VALUES (%s, %s, %s, %s, %s)
           RETURNING id::text AS id, name, key_prefix AS prefix, created_at, last_used_at, revoked_at""",
        (uuid.uuid4(), account_id, name, token_hash(key), key[:KEY_PREFIX_CHARS]),
    ).fetchone()
    assert row is not None
    return key, row
