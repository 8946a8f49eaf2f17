"""The UI's own HTTP edge around Streamlit (streamlit_service/app.py): /signin, /signout, and the gate.

The gate lets through only Streamlit's static files and health checks; everything else needs a signed
`genailabs_session` cookie whose token AccountStore resolves to an active person. A page without one is
sent to /signin (303); the websocket is refused (403); any other route answers 401.
"""

from urllib.parse import parse_qs, urlsplit

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from chat_ui import signin_page
from chat_ui.config import Settings
from chat_ui.people import NOTE_COOKIE, NOTE_MAX_AGE, SESSION_COOKIE, CookieCodec, account_store
from genailabs_accounts.errors import AccountError, AccountsUnavailable, NotSignedIn, TooManyAttempts

SIGNIN_PATH = "/signin"
SIGNOUT_PATH = "/signout"
# Reachable without a session: the sign-in routes, health probes, and the frontend's static files.
OPEN_PATHS = frozenset({
    SIGNIN_PATH, SIGNOUT_PATH, "/_stcore/health", "/_stcore/script-health-check", "/_stcore/host-config",
    "/favicon.png", "/manifest.json",
})  # fmt: skip
OPEN_PREFIXES = ("/static/",)
# Streamlit's own routes: without a session they answer 401 instead of a redirect to a page.
API_PREFIXES = ("/_stcore/", "/media/", "/component/", "/app/static/")
MAX_FORM_BYTES = 4096


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def same_origin(headers: Headers) -> bool:
    """A browser names where a POST comes from (Origin, else Sec-Fetch-Site); it must be this UI's own host."""
    origin = headers.get("origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
    return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def is_secure(connection: HTTPConnection) -> bool:
    return connection.url.scheme in ("https", "wss")


class SignInWeb:
    """The sign-in routes and the gate, over one AccountStore and one cookie codec."""

    def __init__(self, settings: Settings, codec: CookieCodec) -> None:
        self.settings = settings
        self.codec = codec

    def routes(self) -> list[BaseRoute]:
        return [
            Route(SIGNIN_PATH, self.signin_form, methods=["GET"]),
            Route(SIGNIN_PATH, self.signin, methods=["POST"]),
            Route(SIGNOUT_PATH, self.signout, methods=["POST"]),
        ]

    def middleware(self) -> list[Middleware]:
        return [Middleware(SignInGate, web=self)]

    async def person_of(self, connection: HTTPConnection) -> tuple[str | None, str | None]:
        """(the resolved token, None) for a live session, else (None, why it ended: None when there was none)."""
        token = self.codec.token_of(connection.cookies.get(SESSION_COOKIE))
        if token is None:
            return None, None
        try:
            await anyio.to_thread.run_sync(account_store(self.settings).resolve, token)
        except NotSignedIn as exc:
            return None, str(exc)
        except AccountsUnavailable:
            return None, "sign-in is unavailable: the accounts database is unreachable"
        return token, None

    async def signin_form(self, request: Request) -> Response:
        token, _ = await self.person_of(request)
        if token is not None:
            return RedirectResponse("/", status_code=303)
        response = self.page(note=self.codec.note_of(request.cookies.get(NOTE_COOKIE)))
        if NOTE_COOKIE in request.cookies:
            response.delete_cookie(NOTE_COOKIE, path="/")  # shown once
        return response

    async def signin(self, request: Request) -> Response:
        if not same_origin(request.headers):
            return PlainTextResponse("cross-site sign-in refused", status_code=403)
        form = await read_form(request)
        if form is None:
            return PlainTextResponse("the sign-in form is too large", status_code=413)
        login, password = form.get("login", ""), form.get("password", "")
        try:
            signed = await anyio.to_thread.run_sync(account_store(self.settings).sign_in, login, password)
        except TooManyAttempts as exc:
            response = self.page(error=str(exc), login=login, status=429)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except AccountsUnavailable:
            return self.page(error="sign-in is unavailable: the accounts database is unreachable", status=503)
        except AccountError as exc:  # wrong login or password, or a disabled account (said only to its owner)
            return self.page(error=str(exc), login=login, status=exc.status_code)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            self.codec.sign(signed.token),
            path="/",
            httponly=True,
            samesite="lax",
            secure=is_secure(request),
        )
        if NOTE_COOKIE in request.cookies:
            response.delete_cookie(NOTE_COOKIE, path="/")
        return response

    async def signout(self, request: Request) -> Response:
        if not same_origin(request.headers):
            return PlainTextResponse("cross-site sign-out refused", status_code=403)
        token = self.codec.token_of(request.cookies.get(SESSION_COOKIE))
        if token is not None:
            try:
                await anyio.to_thread.run_sync(account_store(self.settings).sign_out, token)
            except AccountsUnavailable:
                return self.page(error="sign-out failed: the accounts database is unreachable", status=503)
        return self.to_signin(request, "You are signed out.")

    def to_signin(self, connection: HTTPConnection, note: str | None) -> Response:
        """303 to the sign-in page, the session cookie cleared, with a note for the page to show."""
        response = RedirectResponse(SIGNIN_PATH, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_secure(connection))
        if note:
            response.set_cookie(
                NOTE_COOKIE, self.codec.note(note), max_age=NOTE_MAX_AGE, path="/", httponly=True, samesite="lax"
            )
        return response

    def page(self, error: str | None = None, note: str | None = None, login: str = "", status: int = 200) -> Response:
        return HTMLResponse(signin_page.render(error, note, login), status_code=status, headers=signin_page.HEADERS)


async def read_form(request: Request) -> dict[str, str] | None:
    """The url-encoded form, read up to MAX_FORM_BYTES; None when it is longer."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items() if values}


class SignInGate:
    """Pure ASGI middleware (it must see websocket scopes, which BaseHTTPMiddleware does not)."""

    def __init__(self, app: ASGIApp, web: SignInWeb) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        token, ended = await self.web.person_of(connection)
        if token is not None:
            await self.app(scope, receive, send)
            return
        await self.refuse(scope, receive, send, connection, ended)

    async def refuse(
        self, scope: Scope, receive: Receive, send: Send, connection: HTTPConnection, ended: str | None
    ) -> None:
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).close(code=1008)  # before accept: the server answers 403
            return
        response: Response
        if scope["method"] in ("GET", "HEAD") and not scope["path"].startswith(API_PREFIXES):
            response = self.web.to_signin(connection, ended and f"Your session ended: {ended}.")
        else:
            response = PlainTextResponse("not signed in", status_code=401)
        await response(scope, receive, send)
