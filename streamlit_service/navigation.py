"""The UI's page menu (st.navigation): the chat page is "Chat"; the Admin and Models pages are listed for admins only.

app.py serves this script; every page it runs still calls the gate (chat_ui.auth.require_person) itself, which
reuses the person resolved here for the same run instead of asking the database again.
"""

import streamlit as st

from chat_ui import auth
from chat_ui.config import get_settings

person = auth.require_person(get_settings())
pages = [
    st.Page("main.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("pages/1_Usage.py", title="Usage", icon=":material/bar_chart:", url_path="Usage"),
    st.Page("pages/2_Documents.py", title="Documents", icon=":material/library_books:", url_path="Documents"),
]
if person.account.is_admin:
    pages.append(st.Page("pages/3_Admin.py", title="Admin", icon=":material/admin_panel_settings:", url_path="Admin"))
    pages.append(st.Page("pages/4_Models.py", title="Models", icon=":material/deployed_code:", url_path="Models"))
with auth.resolved_for_this_run(person):
    st.navigation(pages).run()
