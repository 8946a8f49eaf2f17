"""GenAILabs chat UI: `streamlit run app.py` (port 8501). Streamlit's ASGI app (st.App) serves the pages behind
the sign-in routes and gate of chat_ui/signin_web.py; the server flags (--server.port, ...) apply as before."""

import streamlit as st
from streamlit import config as streamlit_config

from chat_ui.config import get_settings
from chat_ui.people import cookie_codec
from chat_ui.signin_web import SignInWeb

settings = get_settings()
# Streamlit binds every interface when no address is given: then only a UI_COOKIE_SECRET of our own will do.
bind_address = streamlit_config.get_option("server.address") or "0.0.0.0"
web = SignInWeb(settings, cookie_codec(settings, bind_address))
app = st.App("navigation.py", routes=web.routes(), middleware=web.middleware())
