"""LiteLLM's `general_settings.custom_auth`: the master key, and virtual keys checked against PostgreSQL.

A service key (or the master key) with an `X-GenAILabs-User: <account id>` header is authenticated as
that person's own key: their models, budget and rate limits apply, and the request is logged as theirs.

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

from hub.access import USER_HEADER, check_key, check_key_alive, person_id, requested_models
from hub.cache import CachedKey, current_spend
from hub.errors import (
    DatabaseUnavailable,
    HubError,
    KeyStoreUnavailable,
    MissingKey,
    NotAServiceKey,
    PersonHasNoKey,
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
    acting_for = request.headers.getlist(USER_HEADER)
    is_master = hmac.compare_digest(key.encode(), master.encode())
    if is_master and not acting_for:
        if is_model_route(route) and request.method == "POST":
            check_request(route, await read_request_body(request))
        return UserAPIKeyAuth(api_key=key, user_role=LitellmUserRoles.PROXY_ADMIN, key_alias=MASTER_ALIAS)

    if not is_model_route(route):
        raise RouteNotAllowed(route)
    if is_master:
        # The master key may do anything a service key may, so it may act for a person too.
        cached = await person_key(state, person_id(acting_for))
    else:
        cached = await presented_key(state, key)
        if acting_for:
            if not cached.record.is_service:
                raise NotAServiceKey(cached.record.alias, USER_HEADER)
            check_key_alive(cached.record, datetime.now(UTC))
            cached = await person_key(state, person_id(acting_for))

    body = await read_request_body(request)
    # Budgets are checked against the shared spend on every request, so N instances cannot overshoot one by
    # N times what a cached figure missed: only requests still in flight can pass together.
    record, spend = cached.record, await current_spend(cached, state.ledger, state.db.fetch_spend)
    models = requested_models(body if isinstance(body, dict) else {}, request.path_params.get("model"))
    check_key(record, spend, models, datetime.now(UTC))  # what the key may do comes before how it asked
    if request.method == "POST":
        check_request(route, body)
    return UserAPIKeyAuth(
        # UserAPIKeyAuth hashes an `sk-` key itself, so the raw key never reaches logs or callbacks; a
        # person's key hash is no `sk-` key and stays as given. Either way `api_key` (and `token`) is the
        # hash of the key whose limits apply: LiteLLM's rpm/tpm limiter counts by it and hub.logger
        # writes it (with `key_alias`) in the request log, so a service key acting for a person counts
        # and logs as that person.
        api_key=record.key_hash if acting_for else key,
        key_alias=record.alias,
        models=record.models,
        max_budget=record.max_budget,
        spend=spend,
        rpm_limit=record.rpm_limit,
        tpm_limit=record.tpm_limit,
    )


async def presented_key(state: HubState, key: str) -> CachedKey:
    """The record of the key in the request; UnknownKey when there is none."""
    try:
        cached = await state.keys.get(hash_key(key), state.db.fetch_key)
    except DatabaseUnavailable:
        raise KeyStoreUnavailable() from None
    if cached is None:
        raise UnknownKey(mask_key(key))
    return cached


async def person_key(state: HubState, user_id: str) -> CachedKey:
    """The person's active key, which a service key acts as; PersonHasNoKey for a disabled account."""
    try:
        cached = await _person_key(state, user_id)
        if cached is not None and cached.record.revoked_at is not None:
            # Their key was revoked since we last looked: they may have a new one (an account enabled again).
            state.people.forget(user_id)
            cached = await _person_key(state, user_id)
    except DatabaseUnavailable:
        raise KeyStoreUnavailable() from None
    if cached is None or cached.record.revoked_at is not None:
        raise PersonHasNoKey(user_id, USER_HEADER)
    return cached


async def _person_key(state: HubState, user_id: str) -> CachedKey | None:
    key_hash = await state.people.get(user_id, state.db.fetch_person_key)
    return None if key_hash is None else await state.keys.get(key_hash, state.db.fetch_key)


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
