"""The Usage page's data: each person's requests, tokens and cost (AccountStore.usage, from the proxy's request
log through each person's key), and for admins the whole log per day and its latency percentiles."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg

from genailabs_accounts.db import describe_url
from genailabs_accounts.store import AccountStore

PER_DAY = """
SELECT date_trunc('day', started_at)::date AS day,
       COALESCE(model_group, model_requested, '?') AS model,
       count(*) AS requests,
       count(*) FILTER (WHERE status = 'failure') AS failures,
       sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens
FROM hub_request_log
WHERE started_at >= now() - make_interval(days => %s)
GROUP BY 1, 2 ORDER BY 1, 2
"""
LATENCY = """
SELECT COALESCE(model_group, model_requested, '?') AS model,
       count(*) AS requests,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_ms) AS p90_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms) AS ttft_p50_ms,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY ttft_ms) AS ttft_p90_ms
FROM hub_request_log
WHERE started_at >= now() - make_interval(days => %s) AND status = 'success'
GROUP BY 1 ORDER BY 2 DESC
"""
PERSON_COLUMNS = ["login", "model", "requests", "failures", "prompt_tokens", "completion_tokens", "cost"]
TOTALS = ["requests", "failures", "prompt_tokens", "completion_tokens", "cost"]


class UsageUnavailable(RuntimeError):
    """The request log cannot be read; the message never carries credentials."""


def person_usage(store: AccountStore, days: int, account_id: str | None) -> pd.DataFrame:
    """One row per person and model over the last `days` days: one person's, or everyone's with None."""
    since = datetime.now(UTC) - timedelta(days=days)
    lines = store.usage(since, account_id)
    frame = pd.DataFrame([line.model_dump() for line in lines], columns=["user_id", *PERSON_COLUMNS])
    return frame.sort_values(["login", "requests"], ascending=[True, False], ignore_index=True)


def per_person(frame: pd.DataFrame) -> pd.DataFrame:
    """The totals of each person (login as the index), most requests first."""
    return frame.groupby("login")[TOTALS].sum().sort_values("requests", ascending=False)


def _frame(url: str, query: str, days: int) -> pd.DataFrame:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn, conn.cursor() as cursor:
            cursor.execute(query, (days,))
            columns = [column.name for column in cursor.description or []]
            return pd.DataFrame(cursor.fetchall(), columns=columns)
    except psycopg.errors.UndefinedTable:
        return pd.DataFrame()
    except psycopg.OperationalError:
        raise UsageUnavailable(f"hub database {describe_url(url)} is unreachable") from None


def usage_per_day(url: str, days: int) -> pd.DataFrame:
    """Every key's requests and tokens per day and model (admins only: it is the whole log)."""
    frame = _frame(url, PER_DAY, days)
    if not frame.empty:
        frame["tokens"] = frame["prompt_tokens"] + frame["completion_tokens"]
        frame["day"] = pd.to_datetime(frame["day"])
    return frame


def latency_percentiles(url: str, days: int) -> pd.DataFrame:
    return _frame(url, LATENCY, days)
