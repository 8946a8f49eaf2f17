"""What a virtual key may do: the checks behind 401, 403 and budget answers, free of HTTP and I/O."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from hub.errors import BudgetExceeded, ExpiredKey, InvalidRequest, ModelNotAllowed, RevokedKey
from hub.records import KeyRecord

# Sent with a service key, it names the person (an account id) the request is made for.
USER_HEADER = "X-GenAILabs-User"
# Room for a UUID in any of its spellings (braces, urn:uuid:); anything longer is not one.
MAX_USER_HEADER_CHARS = 64


def check_key(record: KeyRecord, spend: float, models: Iterable[str], now: datetime) -> None:
    """Raises the first reason the key may not make this request, in the order a caller can fix them."""
    check_key_alive(record, now)
    if record.models:
        for model in models:
            if model not in record.models:
                raise ModelNotAllowed(record.holder, model, record.models)
    if record.max_budget is not None and spend >= record.max_budget:
        raise BudgetExceeded(record.holder, spend, record.max_budget)


def check_key_alive(record: KeyRecord, now: datetime) -> None:
    """Raises when the key is revoked or expired."""
    if record.revoked_at is not None and record.revoked_at <= now:
        raise RevokedKey(record.alias, record.revoked_at)
    if record.expires_at is not None and record.expires_at <= now:
        raise ExpiredKey(record.alias, record.expires_at)


def requested_models(body: dict[str, object], path_model: str | None) -> list[str]:
    """The model a request names, plus any fallbacks the client asks for in the body: a key must be
    allowed each of them, or a fallback would reach a model the key may not use."""
    models = [model for model in (body.get("model"), path_model) if isinstance(model, str) and model]
    fallbacks = body.get("fallbacks")
    if isinstance(fallbacks, list):
        for fallback in fallbacks:
            name = fallback.get("model") if isinstance(fallback, dict) else fallback
            if isinstance(name, str) and name:
                models.append(name)
    return list(dict.fromkeys(models))


def person_id(values: Sequence[str]) -> str:
    """The account id in the USER_HEADER values of a request, as stored in a person's key (canonical UUID)."""
    if len(values) != 1:
        raise InvalidRequest(USER_HEADER, f"send one {USER_HEADER} header, not {len(values)}")
    value = values[0].strip()
    if len(value) > MAX_USER_HEADER_CHARS:
        raise InvalidRequest(USER_HEADER, f"{USER_HEADER} is too long: it must be an account id (a UUID)")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequest(USER_HEADER, f"{USER_HEADER} must be an account id (a UUID)") from None
