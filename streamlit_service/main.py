"""GenAILabs chat UI: the chat page, served by `streamlit run app.py`. It only lays out; chat_ui/ does the work."""

import streamlit as st

from chat_ui import auth, chat_view, knowledge, session, sidebar, turn
from chat_ui.config import get_settings

st.set_page_config(page_title="GenAILabs chat", page_icon=":material/chat:", layout="wide")
st.session_state.in_full_run = True
settings = get_settings()
person = auth.require_person(settings)
store = session.store_of(settings)
session.init(settings)
session.load_conversation(store)

with st.sidebar:
    st.title("GenAILabs")
    auth.signout_control(person)
    sidebar.render(settings, store)

conversation = st.session_state.conversation
st.subheader(conversation.title if conversation else "New chat")
chat_view.model_picker(settings, store)
knowledge.picker(settings)
chat_view.controls(settings, store)
chat_view.history(settings)

prompt = st.chat_input("Message the model (Enter sends, Shift+Enter for a new line)")
pending, st.session_state.pending = st.session_state.pending, None
if prompt is not None:
    turn.run(settings, store, prompt)
elif pending is not None:
    turn.run(settings, store, None)
else:
    chat_view.problem_and_actions(store)
st.session_state.in_full_run = False
