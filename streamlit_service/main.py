"""GenAILabs chat UI: the chat page, served by `streamlit run app.py`. It only lays out; chat_ui/ does the work."""

import streamlit as st

from chat_ui import auth, chat_view, knowledge, session, sidebar, turn
from chat_ui.config import get_settings

st.set_page_config(page_title="GenAILabs chat", page_icon=":material/chat:", layout="wide")
st.session_state.in_full_run = True
settings = get_settings()
person = auth.require_person(settings)
session.init(settings)
history = session.history_of(settings)  # the host's sessions, or this person's rows of the UI's own tables
session.load_conversation(history)

with st.sidebar:
    st.title("GenAILabs")
    auth.signout_control(person)
    sidebar.render(settings, history)

conversation = st.session_state.conversation
st.subheader(conversation.title if conversation else "New chat")
chat_view.model_picker(settings, history)
knowledge.picker(settings, history)
chat_view.controls(settings, history)
chat_view.conversation_messages(history)

prompt = st.chat_input("Message the model (Enter sends, Shift+Enter for a new line)")
pending, st.session_state.pending = st.session_state.pending, None
if prompt is not None:
    turn.run(settings, history, prompt)
elif pending is not None:
    turn.run(settings, history, pending[1])
else:
    chat_view.problem_and_actions(history)
st.session_state.in_full_run = False
