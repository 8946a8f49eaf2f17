"""LiteLLM's `litellm_settings.callbacks` entry: one request-log row per proxied request.

LiteLLM reports each attempt (a retry, a fallback) and each request refused before a model was
called (401, 429, a bad request). Events of one request share its call id; the writer merges them
so the row tells how the request ended.
"""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from litellm.constants import LITTELM_INTERNAL_HEALTH_SERVICE_ACCOUNT_NAME
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import UserAPIKeyAuth

from hub.errors import DatabaseUnavailable
from hub.exposure import refuse_exposed_example_secrets
from hub.health import mount_health_route
from hub.records import UsageRow
from hub.response_cache import CACHED_CALL_TYPES, cache_control
from hub.shared_state import refuse_without_redis
from hub.shutdown import run_before_stop
from hub.state import get_state
from hub.tokens import mask_secrets

log = logging.getLogger("hub.logger")

MAX_ERROR_CHARS = 1000
# LiteLLM's background health checks (general_settings.background_health_checks) go through the
# callbacks too, tagged with this service account: they are nobody's requests, so they get no row.
HEALTH_CHECK_ACCOUNT = LITTELM_INTERNAL_HEALTH_SERVICE_ACCOUNT_NAME


class HubLogger(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        # The proxy builds its callbacks inside its startup event: start flushing now, so rows a
        # previous run spooled reach PostgreSQL without waiting for the first request.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # imported outside the proxy (tests, tools): nothing to start
        state = get_state()
        refuse_exposed_example_secrets(state.settings)
        refuse_without_redis(state.settings.redis_url.get_secret_value())
        state.usage.start()
        run_before_stop(state.usage.stop)
        state.redis.start()
        mount_health_route(state)

    async def async_pre_call_hook(
        self, user_api_key_dict: UserAPIKeyAuth, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        """Opts a deterministic request into LiteLLM's response cache (hub/response_cache.py)."""
        key_hash = limited_key(user_api_key_dict)
        control = None
        if call_type in CACHED_CALL_TYPES and key_hash:
            control = cache_control(data, key_hash, get_state().settings.hub_cache_ttl_seconds)
        if control is None:
            data.pop("cache", None)  # a client's own namespace or opt-in never reaches LiteLLM unchecked
        else:
            data["cache"] = control
        return data

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: UserAPIKeyAuth, response: Any
    ) -> Any:
        """Before a budgeted key's answer leaves the proxy, its cost counts for every instance's next check."""
        if user_api_key_dict.max_budget is None:
            return None
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
        request_id = data.get("litellm_call_id")
        key_hash = limited_key(user_api_key_dict)
        if not isinstance(cost, int | float) or cost <= 0 or not isinstance(request_id, str) or not key_hash:
            return None
        try:
            await get_state().db.record_pending_spend(request_id, key_hash, float(cost))
        except DatabaseUnavailable:
            pass  # the log row counts it when PostgreSQL is back; meanwhile budgets use the cached spend
        except Exception:
            log.exception("hub: could not count an answered request's cost")  # never fail the chat for it
        return None

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs)

    def _record(self, kwargs: Any) -> None:
        # A logging problem must never turn into a failed chat.
        try:
            row = usage_row(kwargs)
            if row is not None:
                get_state().usage.add(row)
        except Exception:
            log.exception("hub logger: could not record a request")


def limited_key(auth: UserAPIKeyAuth) -> str | None:
    """The hash of the key whose limits and budget apply (a person's, for a service key acting for them)."""
    return auth.token or auth.api_key


def usage_row(kwargs: dict[str, Any]) -> UsageRow | None:
    """The row for one LiteLLM logging event, from its `standard_logging_object`."""
    payload = kwargs.get("standard_logging_object")
    if not isinstance(payload, dict):
        return None
    metadata = payload.get("metadata") or {}
    if _is_health_check(payload, metadata):
        return None
    status = "success" if payload.get("status") == "success" else "failure"
    started, ended = payload.get("startTime"), payload.get("endTime")
    first_token = payload.get("completionStartTime")
    if not isinstance(started, int | float) or not isinstance(ended, int | float):
        return None
    error = payload.get("error_str") if status == "failure" else None
    return UsageRow(
        request_id=str(payload.get("litellm_call_id") or kwargs.get("litellm_call_id") or payload["id"]),
        started_at=datetime.fromtimestamp(started, UTC),
        ended_at=datetime.fromtimestamp(ended, UTC),
        key_hash=metadata.get("user_api_key_hash"),
        key_alias=metadata.get("user_api_key_alias"),
        model_requested=_requested_model(kwargs) or payload.get("model_group") or None,
        model_group=payload.get("model_group") or None,
        deployment=payload.get("model") or None,
        deployment_id=payload.get("model_id") or None,
        api_base=payload.get("api_base") or None,
        prompt_tokens=int(payload.get("prompt_tokens") or 0),
        completion_tokens=int(payload.get("completion_tokens") or 0),
        cost=float(payload.get("response_cost") or 0.0),
        ttft_ms=(first_token - started) * 1000 if isinstance(first_token, int | float) and first_token else None,
        status=status,
        http_status=200 if status == "success" else _http_status(kwargs, payload),
        # NUL is the one character PostgreSQL text refuses.
        error=mask_secrets(str(error)).replace("\x00", "")[:MAX_ERROR_CHARS] if error else None,
        stream=bool(payload.get("stream")),
        cache_hit=payload.get("cache_hit") is True,
    )


def _is_health_check(payload: dict[str, Any], metadata: dict[str, Any]) -> bool:
    identities = (metadata.get("user_api_key_user_id"), metadata.get("user_api_key_alias"))
    return HEALTH_CHECK_ACCOUNT in (payload.get("request_tags") or []) or HEALTH_CHECK_ACCOUNT in identities


def _requested_model(kwargs: dict[str, Any]) -> str | None:
    """The model the client asked for, which a fallback's event no longer names."""
    litellm_params = kwargs.get("litellm_params") or {}
    body = (litellm_params.get("proxy_server_request") or {}).get("body")
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) and model else None


def _http_status(kwargs: dict[str, Any], payload: dict[str, Any]) -> int | None:
    code = getattr(kwargs.get("exception"), "status_code", None)
    if code is None:
        code = (payload.get("error_information") or {}).get("error_code")
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


hub_logger = HubLogger()
