"""Key administration on PostgreSQL: what `python -m hub.keys` does, without the command line."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hub.db import KEY_SPEND, KEY_WITH_SPEND, describe_url, key_from_row
from hub.errors import (
    AliasTaken,
    AmbiguousKey,
    BadDuration,
    DatabaseUnavailable,
    NoKeyWithHash,
    NoSuchKey,
    PersonHasKey,
)
from hub.records import KeyRecord
from hub.schema import HUB_MIGRATIONS
from hub.tokens import display_prefix, hash_key, new_key

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `45m`, `90s`, `2w` as a timedelta."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise BadDuration(text)
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def connect(url: str, timeout: float) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=True)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"cannot reach the hub database at {describe_url(url)}: {reason}") from None
    HUB_MIGRATIONS.migrate(conn)
    return conn


@dataclass(frozen=True)
class KeyListing:
    record: KeyRecord
    spend: float

    def status(self, now: datetime) -> str:
        if self.record.revoked_at is not None:
            return "revoked"
        if self.record.expires_at is not None and self.record.expires_at <= now:
            return "expired"
        if self.record.max_budget is not None and self.spend >= self.record.max_budget:
            return "over budget"
        return "active"


@dataclass(frozen=True)
class UsageLine:
    alias: str
    model: str
    requests: int
    failures: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    median_latency_ms: float | None
    median_ttft_ms: float | None


@dataclass(frozen=True)
class PersonUsageLine:
    """One person's use of one model, over every key they have had (a re-created key keeps its person)."""

    user_id: str
    login: str
    model: str
    requests: int
    failures: int
    prompt_tokens: int
    completion_tokens: int
    cost: float


class KeyStore:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def create(
        self,
        alias: str,
        models: list[str],
        max_budget: float | None = None,
        rpm_limit: int | None = None,
        tpm_limit: int | None = None,
        expires_at: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[str, KeyRecord]:
        """A new key and its record. The key is returned once and never stored."""
        key = new_key()
        try:
            row = self._fetch_one(
                """INSERT INTO hub_keys (key_hash, key_prefix, alias, models, max_budget, rpm_limit, tpm_limit,
                                         expires_at, metadata)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
                (hash_key(key), display_prefix(key), alias, models, max_budget, rpm_limit, tpm_limit, expires_at,
                 Jsonb(metadata or {})),
            )  # fmt: skip
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "hub_keys_active_user":
                raise PersonHasKey(str((metadata or {}).get("user_id"))) from None
            raise AliasTaken(alias) from None
        assert row is not None
        return key, key_from_row(row)

    def all_keys(self) -> list[KeyListing]:
        rows = self._fetch_all(f"SELECT k.*, {KEY_SPEND} AS spend FROM hub_keys k ORDER BY k.created_at")
        return [KeyListing(key_from_row(row), float(row["spend"])) for row in rows]

    def get(self, key: str) -> KeyListing | None:
        row = self._fetch_one(KEY_WITH_SPEND, (hash_key(key),))
        return None if row is None else KeyListing(key_from_row(row), float(row["spend"]))

    def revoke(self, selector: str) -> KeyRecord:
        """Revokes the one active key whose alias is `selector` or whose prefix starts with it."""
        with self._conn.transaction():
            rows = self._fetch_all(
                """SELECT * FROM hub_keys WHERE revoked_at IS NULL
                   AND (alias = %(s)s OR (length(%(s)s) >= 6 AND key_prefix LIKE %(s)s || '%%'))
                   FOR UPDATE""",
                {"s": selector},
            )
            exact = [row for row in rows if row["alias"] == selector]
            matches = exact or rows
            if not matches:
                raise NoSuchKey(selector)
            if len(matches) > 1:
                raise AmbiguousKey(selector, len(matches))
            row = self._fetch_one(
                "UPDATE hub_keys SET revoked_at = now() WHERE key_hash = %s RETURNING *", (matches[0]["key_hash"],)
            )
        assert row is not None
        return key_from_row(row)

    def for_user(self, user_id: str) -> KeyListing | None:
        """The person's active key and its spend, or None when they have none (a disabled account)."""
        row = self._fetch_one(
            f"SELECT k.*, {KEY_SPEND} AS spend FROM hub_keys k "
            "WHERE k.metadata->>'user_id' = %s AND k.revoked_at IS NULL",
            (user_id,),
        )
        return None if row is None else KeyListing(key_from_row(row), float(row["spend"]))

    def revoke_for_user(self, user_id: str) -> KeyRecord | None:
        """Revokes the person's active key; None when they had none."""
        row = self._fetch_one(
            """UPDATE hub_keys SET revoked_at = now()
               WHERE metadata->>'user_id' = %s AND revoked_at IS NULL RETURNING *""",
            (user_id,),
        )
        return None if row is None else key_from_row(row)

    def update_limits(
        self, key_hash: str, models: list[str], max_budget: float | None, rpm_limit: int | None
    ) -> KeyRecord:
        """Sets an active key's models (empty: all), budget and rpm; proxies apply them within the cache TTL."""
        row = self._fetch_one(
            """UPDATE hub_keys SET models = %s, max_budget = %s, rpm_limit = %s
               WHERE key_hash = %s AND revoked_at IS NULL RETURNING *""",
            (models, max_budget, rpm_limit, key_hash),
        )
        if row is None:
            raise NoKeyWithHash(key_hash)
        return key_from_row(row)

    def mark_service(self, alias: str) -> KeyRecord:
        """Makes the active key with this alias a service key, which may act for a person."""
        row = self._fetch_one(
            """UPDATE hub_keys SET metadata = metadata || '{"service": true}'::jsonb
               WHERE alias = %s AND revoked_at IS NULL RETURNING *""",
            (alias,),
        )
        if row is None:
            raise NoSuchKey(alias)
        return key_from_row(row)

    def usage_by_person(self, since: datetime, user_id: str | None = None) -> list[PersonUsageLine]:
        """Requests, tokens and cost per person and model since `since`, joined through each row's key."""
        rows = self._fetch_all(
            """SELECT k.metadata->>'user_id' AS user_id,
                      (array_agg(k.metadata->>'login' ORDER BY k.created_at DESC))[1] AS login,
                      COALESCE(l.model_group, l.model_requested, '-') AS model, count(*) AS requests,
                      count(*) FILTER (WHERE l.status = 'failure') AS failures,
                      COALESCE(sum(l.prompt_tokens), 0) AS prompt_tokens,
                      COALESCE(sum(l.completion_tokens), 0) AS completion_tokens, COALESCE(sum(l.cost), 0) AS cost
               FROM hub_request_log l JOIN hub_keys k USING (key_hash)
               WHERE l.started_at >= %(since)s AND k.metadata->>'user_id' IS NOT NULL
                 AND (%(user_id)s::text IS NULL OR k.metadata->>'user_id' = %(user_id)s)
               GROUP BY 1, 3 ORDER BY 2, 1, 3""",
            {"since": since, "user_id": user_id},
        )
        return [PersonUsageLine(**{**row, "login": row["login"] or ""}) for row in rows]

    def usage(self, since: datetime, alias: str | None = None) -> list[UsageLine]:
        rows = self._fetch_all(
            """SELECT COALESCE(key_alias, '(unknown key)') AS alias, COALESCE(model_group, model_requested, '-')
                      AS model, count(*) AS requests, count(*) FILTER (WHERE status = 'failure') AS failures,
                      COALESCE(sum(prompt_tokens), 0) AS prompt_tokens,
                      COALESCE(sum(completion_tokens), 0) AS completion_tokens, COALESCE(sum(cost), 0) AS cost,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)
                          FILTER (WHERE status = 'success') AS median_latency_ms,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms)
                          FILTER (WHERE status = 'success' AND stream) AS median_ttft_ms
               FROM hub_request_log
               WHERE started_at >= %(since)s AND (%(alias)s::text IS NULL OR key_alias = %(alias)s)
               GROUP BY 1, 2 ORDER BY 1, 2""",
            {"since": since, "alias": alias},
        )
        return [UsageLine(**row) for row in rows]

    def _fetch_one(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        with self._conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    def _fetch_all(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        with self._conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
