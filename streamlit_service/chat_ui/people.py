"""Who is using the UI: the process's AccountStore, the signed sign-in cookie, and what the backend is sent.

Shared by the web side (chat_ui/signin_web.py, in the event loop) and the pages (chat_ui/auth.py, in
Streamlit's script threads); nothing here imports Streamlit.
"""

import logging
import secrets
from dataclasses import dataclass
from functools import lru_cache

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

from chat_ui.config import Settings
from chat_ui.exposure import is_loopback
from genailabs_accounts import USER_HEADER
from genailabs_accounts.models import Account
from genailabs_accounts.store import AccountPolicy, AccountStore

SESSION_COOKIE = "genailabs_session"
# A one-minute note for the sign-in page ("your session expired ..."): signed, so nobody else can write it.
NOTE_COOKIE = "genailabs_signin_note"
NOTE_MAX_AGE = 60
MAX_COOKIE = 400  # a signed token is ~90 characters; anything far longer is not ours and is not parsed

log = logging.getLogger("chat_ui.people")


@dataclass(frozen=True)
class SignedIn:
    """The person a page serves and the sign-in token their cookie carries."""

    account: Account
    token: str


@dataclass(frozen=True)
class Credentials:
    """What a call to the chat backend carries for a person."""

    api_key: str
    headers: dict[str, str]


class CookieSecretMissing(RuntimeError):
    """UI_COOKIE_SECRET is unset where the UI is served beyond loopback."""


@lru_cache
def _store(genailabs_url: str, hub_url: str, policy: AccountPolicy) -> AccountStore:
    return AccountStore(genailabs_url, hub_url, policy=policy)


def account_store(settings: Settings) -> AccountStore:
    """One store (and connection pool) per process, shared by the web routes and every page."""
    policy = AccountPolicy(
        session_idle_minutes=settings.session_idle_minutes,
        login_max_failures=settings.login_max_failures,
        login_lock_minutes=settings.login_lock_minutes,
    )
    return _store(settings.database_url.get_secret_value(), settings.hub_database_url.get_secret_value(), policy)


@lru_cache
def _process_secret() -> str:
    log.warning("UI_COOKIE_SECRET is unset: using a random one, so every sign-in ends when the UI restarts")
    return secrets.token_urlsafe(32)


def cookie_secret(settings: Settings, bind_address: str) -> str:
    """UI_COOKIE_SECRET; unset, a random one for this process, unless the UI is published beyond loopback."""
    if settings.ui_cookie_secret is not None and settings.ui_cookie_secret.get_secret_value():
        return settings.ui_cookie_secret.get_secret_value()
    address = settings.published_address or bind_address
    if not is_loopback(address):
        raise CookieSecretMissing(
            f"ui: refusing to serve on {address} without UI_COOKIE_SECRET (it signs the sign-in cookie): "
            "set one (`make up` writes it), or bind to 127.0.0.1"
        )
    return _process_secret()


class CookieCodec:
    """The session cookie's value is the sign-in token signed with the UI's secret (itsdangerous)."""

    def __init__(self, secret: str) -> None:
        self._session = URLSafeSerializer(secret, salt="genailabs-session")
        self._note = URLSafeTimedSerializer(secret, salt="genailabs-signin-note")

    def sign(self, token: str) -> str:
        return self._session.dumps(token)

    def token_of(self, value: str | None) -> str | None:
        """The token inside a cookie value; None when it is missing, forged or not ours."""
        if not value or len(value) > MAX_COOKIE:
            return None
        try:
            token = self._session.loads(value)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    def note(self, text: str) -> str:
        return self._note.dumps(text)

    def note_of(self, value: str | None) -> str | None:
        if not value or len(value) > MAX_COOKIE * 2:
            return None
        try:
            text = self._note.loads(value, max_age=NOTE_MAX_AGE)
        except BadSignature:
            return None
        return text if isinstance(text, str) else None


@lru_cache
def _codec(secret: str) -> CookieCodec:
    return CookieCodec(secret)


def cookie_codec(settings: Settings, bind_address: str) -> CookieCodec:
    """The process's codec: one secret for the web routes and the pages."""
    return _codec(cookie_secret(settings, bind_address))


def backend_credentials(settings: Settings, person: SignedIn) -> Credentials:
    """The agent host gets the person's sign-in token; the proxy gets the UI's service key naming the person."""
    if settings.agent_host_url:
        return Credentials(api_key=person.token, headers={})
    return Credentials(api_key=settings.litellm_api_key.get_secret_value(), headers={USER_HEADER: person.account.id})
