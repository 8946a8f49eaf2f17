"""The Usage page's data: the hub's request log (`hub_request_log`), read only with the master key."""

import httpx
import pandas as pd
import psycopg

from chat_ui.store import describe_url

# Only the master key may call the proxy's admin routes: the hub answers 403 to virtual keys there
# (litellm_hub/hub/auth.py, is_model_route), so a 200 from one proves the key is the master key.
ADMIN_PROBE_ROUTE = "/active/callbacks"

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


class UsageUnavailable(RuntimeError):
    """The request log cannot be read; the message never carries credentials."""


def verify_master_key(proxy_root: str, key: str, timeout: float = 5.0) -> str | None:
    """None when the proxy accepts `key` as its master key, else why not (one line)."""
    if not key.strip():
        return "enter the proxy's master key (LITELLM_MASTER_KEY)"
    try:
        reply = httpx.get(
            f"{proxy_root}{ADMIN_PROBE_ROUTE}", headers={"Authorization": f"Bearer {key.strip()}"}, timeout=timeout
        )
    except httpx.HTTPError:
        return f"cannot reach the proxy at {proxy_root} to check the key: start it with `make up`"
    if reply.status_code in (401, 403):
        return "that is not the proxy's master key"
    if reply.status_code != 200:
        return f"the proxy answered {reply.status_code} when checking the key"
    return None


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
    frame = _frame(url, PER_DAY, days)
    if not frame.empty:
        frame["tokens"] = frame["prompt_tokens"] + frame["completion_tokens"]
        frame["day"] = pd.to_datetime(frame["day"])
    return frame


def latency_percentiles(url: str, days: int) -> pd.DataFrame:
    return _frame(url, LATENCY, days)
