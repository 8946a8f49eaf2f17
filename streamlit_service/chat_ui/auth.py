"""The pages' gate: who is signed in (from the cookie the websocket was opened with), sign-out, admin checks.

streamlit_service/app.py already refuses a page or websocket without a live session; this resolves the person
again on every run, so a sign-out elsewhere, an idle expiry or a disabled account ends the page too.
"""

import html
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from chat_ui.config import Settings
from chat_ui.people import SESSION_COOKIE, Credentials, SignedIn, account_store, backend_credentials, cookie_codec
from chat_ui.signin_web import SIGNIN_PATH, SIGNOUT_PATH
from genailabs_accounts.errors import AccountsUnavailable, NotSignedIn

__all__ = ["SignedIn", "admins_only", "credentials", "require_person", "signout_control"]


def _token(settings: Settings) -> str | None:
    value = st.context.cookies.get(SESSION_COOKIE)
    if isinstance(value, str) and value:  # under AppTest, st.context is a MagicMock's
        token = cookie_codec(settings, st.get_option("server.address") or "0.0.0.0").token_of(value)
        if token is not None:
            return token
    # No cookie: a page run by streamlit.testing's AppTest, whose test put a signed-in person here.
    held = st.session_state.get("person")
    return held.token if isinstance(held, SignedIn) else None


def _signed_out(reason: str) -> None:
    st.session_state.pop("person", None)
    st.warning(f"{reason.rstrip('.')}.", icon=":material/lock:")
    st.markdown(f"[Sign in again]({SIGNIN_PATH}) (or reload the page).")
    st.stop()


# Set by navigation.py while the page it resolved the person for runs: that page's gate need not ask again.
_RESOLVED_THIS_RUN = "person_resolved_this_run"


@contextmanager
def resolved_for_this_run(person: SignedIn) -> Iterator[None]:
    """Within this block (one script run of navigation.py and its page) `require_person` reuses `person`."""
    st.session_state[_RESOLVED_THIS_RUN] = person
    try:
        yield
    finally:
        st.session_state.pop(_RESOLVED_THIS_RUN, None)


def require_person(settings: Settings) -> SignedIn:
    """The signed-in person, kept in `st.session_state.person`; the page stops here for anyone else."""
    token = _token(settings)
    resolved = st.session_state.get(_RESOLVED_THIS_RUN)
    if isinstance(resolved, SignedIn) and token is not None and resolved.token == token:
        return resolved
    if token is None:
        _signed_out("You are not signed in")
        raise AssertionError("unreachable")  # st.stop() raises; this keeps the type checker honest
    try:
        account = account_store(settings).resolve(token)
    except NotSignedIn as exc:
        _signed_out(f"Your session ended: {exc}")
        raise AssertionError("unreachable") from None
    except AccountsUnavailable as exc:
        st.error(f"Cannot check who you are: {exc}. Start it with `make up`.", icon=":material/error:")
        st.stop()
        raise AssertionError("unreachable") from None
    person = SignedIn(account=account, token=token)
    st.session_state.person = person
    return person


def credentials(settings: Settings) -> Credentials:
    """What a backend call made for the signed-in person carries (read in the script thread, not a worker)."""
    person = st.session_state.get("person")
    if not isinstance(person, SignedIn):
        raise RuntimeError("no signed-in person: call auth.require_person first")
    return backend_credentials(settings, person)


def signout_control(person: SignedIn) -> None:
    """Who is signed in and a Sign out button: a plain form POSTing to /signout (the cookie is HTTP-only)."""
    account = person.account
    role = " · admin" if account.is_admin else ""
    st.html(
        f'<div class="genailabs-person" style="display:flex;align-items:center;gap:0.6rem;flex-wrap:wrap">'
        f"<span>Signed in as <b>{html.escape(account.name or account.login)}</b> "
        f'<span style="opacity:0.7">({html.escape(account.login)}{role})</span></span>'
        f'<form method="post" action="{SIGNOUT_PATH}" style="margin:0">'
        f'<button type="submit" style="cursor:pointer;padding:0.15rem 0.6rem;border-radius:0.4rem;'
        f'border:1px solid rgba(128,128,128,0.5);background:transparent;color:inherit">Sign out</button>'
        f"</form></div>"
    )


def admins_only(person: SignedIn) -> None:
    """Stops the page for anyone who is not an admin, showing nothing but that."""
    if not person.account.is_admin:
        st.error("Admins only.", icon=":material/block:")
        st.stop()
