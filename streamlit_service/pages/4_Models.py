"""Models (admins only): each runtime's installed models, pulling one by name, deleting one after confirming."""

import streamlit as st

from chat_ui import auth, models_view
from chat_ui.config import get_settings
from chat_ui.runtime_client import installed_everywhere

st.set_page_config(page_title="GenAILabs models", page_icon=":material/deployed_code:", layout="wide")
settings = get_settings()
person = auth.require_person(settings)
with st.sidebar:
    auth.signout_control(person)
auth.admins_only(person)
st.title("Models")

if not settings.runtime_urls:
    st.info("No model runtime is configured (RUNTIME_URLS in streamlit_service/.env).", icon=":material/info:")
    st.stop()
runtimes = installed_everywhere(settings.runtime_urls, settings.probe_timeout * 3)
models_view.show_flash()
for found in runtimes:
    models_view.runtime_section(found, several=len(runtimes) > 1)
models_view.pull_form(settings, runtimes)
models_view.delete_picker(settings, runtimes)
