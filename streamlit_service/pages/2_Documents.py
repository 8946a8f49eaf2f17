"""Documents: the agent host's RAG collections, uploads with progress, documents and retrieval testing."""

import streamlit as st

from chat_ui import documents_view, retrieval_view
from chat_ui.config import get_settings
from chat_ui.rag_client import HostProblem, rag_client_of

st.set_page_config(page_title="GenAILabs documents", page_icon=":material/library_books:", layout="wide")
st.title("Documents")
settings = get_settings()
if not settings.agent_host_url:
    st.info(documents_view.PROXY_MODE_NOTE, icon=":material/info:")
    st.stop()

client = rag_client_of(settings)
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
name = documents_view.pick_collection(collections)
if st.session_state.get("confirm_delete_collection") == name:
    documents_view.confirm_delete(client, next(c for c in collections if c.name == name))
documents_view.upload_section(client, name)
documents_view.documents_section(client, name)
st.divider()
retrieval_view.render(client, [c.name for c in collections], name)
