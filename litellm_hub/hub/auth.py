"""LiteLLM's `general_settings.custom_auth`: the master key, and virtual keys checked against PostgreSQL.

LiteLLM calls `user_api_key_auth` for every authenticated route and skips its own key, model and
budget checks when a custom auth is set, so all of them happen here. Rate limits are not: the
rpm/tpm limits on the returned `UserAPIKeyAuth` are enforced by LiteLLM's own limiter (429).
"""

import hmac
from datetime import UTC, datetime

from fastapi import Request
from litellm.proxy._types import LitellmUserRoles, ProxyException, UserAPIKeyAuth
from litellm.proxy.auth.auth_utils import get_request_route
from litellm.proxy.common_utils.http_parsing_utils import read_request_body

from hub.access import check_key, requested_models
from hub.errors import (
    DatabaseUnavailable,
    HubError,
    KeyStoreUnavailable,
    MissingKey,
    RouteNotAllowed,
    UnknownKey,
)
from hub.requests import check_request
from hub.state import HubState, get_state
from hub.tokens import hash_key, mask_key

MASTER_ALIAS = "master-key"


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    try:
        return await authenticate(get_state(), request, api_key)
    except HubError as exc:
        # `from None`: the chained traceback would carry request details into LiteLLM's error log.
        raise ProxyException(message=str(exc), type=exc.error_type, param=exc.param, code=exc.status_code) from None


async def authenticate(state: HubState, request: Request, api_key: str) -> UserAPIKeyAuth:
    key = api_key.removeprefix("Bearer ").strip() if api_key else ""
    if not key:
        raise MissingKey()
    master = state.settings.litellm_master_key.get_secret_value()
    route = get_request_route(request)
    if hmac.compare_digest(key.encode(), master.encode()):
        if is_model_route(route) and request.method == "POST":
            check_request(route, await read_request_body(request))
        return UserAPIKeyAuth(api_key=key, user_role=LitellmUserRoles.PROXY_ADMIN, key_alias=MASTER_ALIAS)

    if not is_model_route(route):
        raise RouteNotAllowed(route)
    try:
        cached = await state.keys.get(hash_key(key), state.db.fetch_key)
    except DatabaseUnavailable:
        raise KeyStoreUnavailable() from None
    if cached is None:
        raise UnknownKey(mask_key(key))

    body = await read_request_body(request)
    record, spend = cached.record, cached.spend(state.ledger)
    models = requested_models(body if isinstance(body, dict) else {}, request.path_params.get("model"))
    check_key(record, spend, models, datetime.now(UTC))  # what the key may do comes before how it asked
    if request.method == "POST":
        check_request(route, body)
    # `api_key` is hashed by UserAPIKeyAuth itself: the raw key never reaches logs or callbacks.
    return UserAPIKeyAuth(
        api_key=key,
        key_alias=record.alias,
        models=record.models,
        max_budget=record.max_budget,
        spend=spend,
        rpm_limit=record.rpm_limit,
        tpm_limit=record.tpm_limit,
    )


# Everything a virtual key may call: the OpenAI-compatible model API, with and without /v1. Every other
# route LiteLLM mounts (provider pass-throughs, /v1/messages, Gemini's generateContent, files, batches,
# admin) stays with the master key, so a key's model allow-list cannot be side-stepped through one.
VIRTUAL_KEY_ROUTES = frozenset(
    prefix + route
    for prefix in ("", "/v1")
    for route in ("/chat/completions", "/completions", "/embeddings", "/models", "/model/info")
)


def is_model_route(route: str) -> bool:
    """Virtual keys call models and list them; every other route stays with the master key."""
    return route.rstrip("/") in VIRTUAL_KEY_ROUTES
