"""Admin: every account, adding one, and each person's role, status, password, allowed models, rpm and budget."""

import streamlit as st

from chat_ui import admin_view, auth
from chat_ui.config import get_settings
from chat_ui.people import account_store
from genailabs_accounts.errors import AccountsUnavailable

st.set_page_config(page_title="GenAILabs admin", page_icon=":material/admin_panel_settings:", layout="wide")
settings = get_settings()
person = auth.require_person(settings)
with st.sidebar:
    auth.signout_control(person)
auth.admins_only(person)
st.title("Accounts")

store = account_store(settings)
try:
    accounts = store.list_accounts()
except AccountsUnavailable as exc:
    st.error(f"Accounts unavailable: {exc}. Start it with `make up`.", icon=":material/error:")
    st.stop()
models = admin_view.models_of(settings)

admin_view.show_flash()
admin_view.accounts_table(accounts)
admin_view.add_form(store, models)
st.subheader("Change an account")
by_login = {account.login: account for account in accounts}
login = st.selectbox("Account", list(by_login), key="admin_account")
if login is not None:
    admin_view.manage(store, by_login[login], models, person.account.id)
