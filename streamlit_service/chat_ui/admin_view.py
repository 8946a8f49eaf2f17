"""The Admin page's parts: the accounts table, adding an account, and changing one (AccountStore does the work)."""

from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import streamlit as st

from chat_ui.config import Settings
from genailabs_accounts.errors import AccountError
from genailabs_accounts.models import ROLES, AccountListing
from genailabs_accounts.passwords import MIN_PASSWORD, generate_password
from genailabs_accounts.store import AccountStore

FLASH = "admin_flash"
ONE_TIME = "admin_one_time_password"


@st.cache_data(ttl=30, show_spinner=False)
def proxy_models(base_url: str, api_key: str, timeout: float) -> list[str] | None:
    """The proxy's model names (what a person may be allowed), or None when the proxy does not answer."""
    try:
        reply = httpx.get(f"{base_url}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)
        reply.raise_for_status()
        return sorted(str(model["id"]) for model in reply.json().get("data", []))
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def models_of(settings: Settings) -> list[str] | None:
    key = settings.litellm_api_key.get_secret_value()
    return proxy_models(settings.litellm_base_url.rstrip("/"), key, settings.probe_timeout * 3)


def attempt(action: Callable[[], Any], done: str) -> bool:
    """Runs one AccountStore change; its refusal (last admin, login taken, ...) is shown, never raised."""
    try:
        action()
    except AccountError as exc:
        st.error(f"Not done: {exc}.", icon=":material/error:")
        return False
    st.session_state[FLASH] = done
    return True


def show_flash() -> None:
    """The last change's confirmation and, once, a password the UI generated (then it is gone for good)."""
    if message := st.session_state.pop(FLASH, None):
        st.success(message, icon=":material/check:")
    if one_time := st.session_state.pop(ONE_TIME, None):
        login, password = one_time
        st.warning(f"The password of **{login}**, shown this once: pass it on now.", icon=":material/key:")
        st.code(password, language=None)


def accounts_table(accounts: list[AccountListing]) -> None:
    rows = [
        {
            "login": a.login,
            "name": a.name,
            "role": a.role,
            "status": "disabled" if a.disabled else "active",
            "last seen": a.last_seen_at,
            "models": ", ".join(a.models) or "all",
            "rpm": a.rpm,
            "budget ($)": a.max_budget,
            "spent ($)": round(a.spend, 4),
        }
        for a in accounts
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def add_form(store: AccountStore, models: list[str] | None) -> None:
    with st.expander("Add an account", icon=":material/person_add:"), st.form("add_account", clear_on_submit=True):
        left, right = st.columns(2)
        login = left.text_input("Login", max_chars=64, help="letters, digits and . _ @ -", key="add_login")
        name = right.text_input("Name", max_chars=200, key="add_name")
        password = left.text_input(
            "Password",
            type="password",
            max_chars=1024,
            help=f"empty: one is generated (at least {MIN_PASSWORD} characters otherwise)",
            key="add_password",
        )
        role = right.selectbox("Role", ROLES, index=ROLES.index("user"), key="add_role")
        allowed, rpm, budget = limit_inputs(models, [], None, None, key="add")
        if st.form_submit_button("Add", type="primary"):
            chosen = password or generate_password()
            create = lambda: store.create_account(login, chosen, name, role, allowed, rpm, budget)  # noqa: E731
            if attempt(create, f"Added {login}."):
                if not password:
                    st.session_state[ONE_TIME] = (login, chosen)
                st.rerun()


def limit_inputs(
    models: list[str] | None, current: list[str], rpm: int | None, budget: float | None, key: str
) -> tuple[list[str], int | None, float | None]:
    """Allowed models (none picked: every model), requests per minute and budget in dollars (empty: no limit)."""
    if models is None:
        st.caption("The proxy's model list is unavailable: the allowed models are kept as they are.")
        allowed = current
    else:
        allowed = st.multiselect(
            "Allowed models", sorted({*models, *current}), default=current, key=f"{key}_models", placeholder="all"
        )
    left, right = st.columns(2)
    new_rpm = left.number_input("Requests per minute", min_value=1, value=rpm, step=1, key=f"{key}_rpm")
    new_budget = right.number_input("Budget ($)", min_value=0.0, value=budget, step=1.0, key=f"{key}_budget")
    return allowed, None if new_rpm is None else int(new_rpm), new_budget


def manage(store: AccountStore, account: AccountListing, models: list[str] | None, me: str) -> None:
    """Role, status, password and limits of one account."""
    st.markdown(f"**{account.login}** · {account.role} · {'disabled' if account.disabled else 'active'}")
    with st.form(f"role_{account.id}"):
        role = st.selectbox("Role", ROLES, index=ROLES.index(account.role), key=f"role_{account.id}_value")
        done = f"{account.login} is now {role}."
        if st.form_submit_button("Set role") and attempt(lambda: store.set_role(account.id, role), done):
            st.rerun()
    switch = "Enable" if account.disabled else "Disable"
    if st.button(switch, key=f"toggle_{account.id}", disabled=account.id == me and not account.disabled):
        done = f"{account.login} is {'enabled' if account.disabled else 'disabled'}."
        if attempt(lambda: store.set_disabled(account.id, not account.disabled), done):
            st.rerun()
    with st.form(f"password_{account.id}", clear_on_submit=True):
        password = st.text_input("New password", type="password", max_chars=1024, help="empty: one is generated")
        if st.form_submit_button("Reset password"):
            chosen = password or generate_password()
            done = f"The password of {account.login} is reset; their sign-ins ended."
            if attempt(lambda: store.reset_password(account.id, chosen), done):
                if not password:
                    st.session_state[ONE_TIME] = (account.login, chosen)
                st.rerun()
    if account.disabled:
        st.caption("Enable the account to change its limits.")
        return
    with st.form(f"limits_{account.id}"):
        allowed, rpm, budget = limit_inputs(models, account.models, account.rpm, account.max_budget, account.id)
        if st.form_submit_button("Save limits"):
            done = f"Limits of {account.login} saved."
            if attempt(lambda: store.set_limits(account.id, allowed, rpm, budget), done):
                st.rerun()
