"""The per-login sign-in throttle in `login_attempts`: a few free failures, then growing waits, then a lock."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from genailabs_accounts.errors import TooManyAttempts

# Failures a day old are forgotten, which also bounds the table an attacker can fill with made-up logins.
_FORGET = "DELETE FROM login_attempts WHERE last_failure_at < now() - interval '1 day'"
# 2**6 s already exceeds the 60 s cap; a bounded exponent keeps PostgreSQL's power() from overflowing.
MAX_EXPONENT = 6
MAX_WAIT_SECONDS = 60

# The attempt is counted as a failure *before* the password is checked, in one statement that also checks the
# wait: parallel guesses cannot all slip through the same window. A success deletes the row afterwards.
_CLAIM = """
UPDATE login_attempts SET
    failures = failures + 1,
    last_failure_at = now(),
    locked_until = CASE WHEN failures + 1 >= %(max)s
                        THEN now() + %(lock)s * interval '1 minute' ELSE locked_until END
WHERE login = %(login)s
  AND (locked_until IS NULL OR locked_until <= now())
  AND (failures < %(free)s OR last_failure_at
       + LEAST(%(cap)s, power(2, LEAST(failures - %(free)s, %(exp)s))) * interval '1 second' <= now())
RETURNING failures"""


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int
    max_failures: int
    lock_minutes: int


def claim_attempt(conn: psycopg.Connection[dict[str, Any]], login: str, policy: ThrottlePolicy) -> None:
    """Counts one attempt for `login`, or raises TooManyAttempts(retry_after) when it must wait or is locked."""
    conn.execute(_FORGET)
    conn.execute("INSERT INTO login_attempts (login) VALUES (%s) ON CONFLICT (login) DO NOTHING", (login,))
    params = {
        "login": login,
        "max": policy.max_failures,
        "lock": policy.lock_minutes,
        "free": policy.free_failures,
        "cap": MAX_WAIT_SECONDS,
        "exp": MAX_EXPONENT,
    }
    if conn.execute(_CLAIM, params).fetchone() is not None:
        return
    row = conn.execute(
        "SELECT failures, last_failure_at, locked_until, now() AS now FROM login_attempts WHERE login = %s", (login,)
    ).fetchone()
    assert row is not None  # inserted above; only a success deletes it
    raise _refusal(row, policy)


def _refusal(row: dict[str, Any], policy: ThrottlePolicy) -> TooManyAttempts:
    now: datetime = row["now"]
    if row["locked_until"] is not None and row["locked_until"] > now:
        return TooManyAttempts(_seconds(row["locked_until"] - now), locked=True)
    wait = min(MAX_WAIT_SECONDS, 2 ** min(row["failures"] - policy.free_failures, MAX_EXPONENT))
    return TooManyAttempts(_seconds(row["last_failure_at"] + timedelta(seconds=wait) - now))


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def reset(conn: psycopg.Connection[dict[str, Any]], login: str) -> None:
    """A right password: the login's failures are forgotten."""
    conn.execute("DELETE FROM login_attempts WHERE login = %s", (login,))
