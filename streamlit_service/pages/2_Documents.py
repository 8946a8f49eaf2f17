"""Documents: the person's RAG collections (and the shared ones, read-only), uploads, documents, retrieval testing."""

import streamlit as st

from chat_ui import auth, documents_view, retrieval_view, session
from chat_ui.config import get_settings
from chat_ui.host import HostProblem

st.set_page_config(page_title="GenAILabs documents", page_icon=":material/library_books:", layout="wide")
settings = get_settings()
auth.require_person(settings)
st.title("Documents")
if not settings.agent_host_url:
    st.info(documents_view.PROXY_MODE_NOTE, icon=":material/info:")
    st.stop()

client = session.host(settings)
documents_view.show_flash()
try:
    collections = client.collections()
except HostProblem as exc:
    st.error(f"Collections unavailable: {exc.message}", icon=":material/error:")
    st.stop()

documents_view.collections_table(collections)
documents_view.create_form(client)
if not collections:
    st.stop()
chosen = documents_view.pick_collection(client, collections)
if chosen.writable and st.session_state.get("confirm_delete_collection") == chosen.name:
    documents_view.confirm_delete(client, chosen)
if chosen.writable:
    documents_view.upload_section(client, chosen.name)
documents_view.documents_section(client, chosen.name, chosen.writable)
st.divider()
retrieval_view.render(client, [c.name for c in collections], chosen.name)
