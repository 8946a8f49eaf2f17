"""Whom the proxy calls of this request are made for: a ContextVar set by auth, read by an httpx hook.

The host holds a service key on the proxy; with `X-GenAILabs-User: <account id>` the hub serves a call as
that person's own key (their models, rpm, budget, and their row in hub_request_log). Every client that calls
the proxy gets `person_header` as a request hook, so no call site has to remember the person.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx
from openai import DefaultAsyncHttpxClient

from genailabs_accounts import USER_HEADER

# Asked as the service itself: the deployments' metadata the host caches for everyone (a person's view would
# hide the models they may not use from the windows every other person's turns are planned with).
SHARED_PATHS = ("/model/info",)

acting_for: ContextVar[str | None] = ContextVar("acting_for", default=None)


async def person_header(request: httpx.Request) -> None:
    """httpx request hook: names the person this request is served for, if any."""
    person = acting_for.get()
    if person is None or request.url.path.endswith(SHARED_PATHS):
        request.headers.pop(USER_HEADER, None)
        return
    request.headers[USER_HEADER] = person


def proxy_http_client(timeout: httpx.Timeout | float) -> httpx.AsyncClient:
    """An httpx client for the proxy that names the person of the current request on every call."""
    return DefaultAsyncHttpxClient(timeout=timeout, event_hooks={"request": [person_header]})


@contextmanager
def acting_as(person: str | None) -> Iterator[None]:
    """Proxy calls inside are made for `person` (None: as the host's service key itself)."""
    token = acting_for.set(person)
    try:
        yield
    finally:
        acting_for.reset(token)
