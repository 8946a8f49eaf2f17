"""The page's state across reruns: the open conversation, its messages and parameters, and the store."""

from typing import Any

import streamlit as st
from pydantic import ValidationError

from chat_ui.backend import ModelList, list_models
from chat_ui.config import Settings
from chat_ui.errors import ChatProblem
from chat_ui.schemas import Conversation, GenerationParams, Message
from chat_ui.store import HistoryStore, StoreUnavailable


@st.cache_resource(show_spinner=False)
def get_store(url: str) -> HistoryStore:
    return HistoryStore(url)


def store_of(settings: Settings) -> HistoryStore:
    return get_store(settings.database_url.get_secret_value())


def init(settings: Settings) -> None:
    state = st.session_state
    if "conv_id" not in state:
        requested = st.query_params.get("c")
        state.conv_id = int(requested) if requested and requested.isdigit() else None
        state.conversation = None
        state.messages = []
        state.draft = GenerationParams(model=settings.default_model, max_tokens=min(512, settings.max_tokens_limit))
        state.models = None
        state.problem = None
        state.pending = None
        state.search = ""
        state.list_limit = 30
        state.unsaved = False


def load_conversation(store: HistoryStore) -> None:
    """Reads the open conversation from the database; while it is down, the page keeps its own copy."""
    state = st.session_state
    if state.conv_id is None:
        state.conversation = None  # a new chat, or one kept unsaved while the database is down
        return
    try:
        conversation = store.get(state.conv_id)
        if conversation is None:
            select(None)
            return
        state.conversation = conversation
        state.messages = store.messages(conversation.id)
        state.unsaved = False
    except StoreUnavailable:
        pass  # the status panel says so; what is on screen stays


def select(conversation_id: int | None) -> None:
    state = st.session_state
    state.conv_id = conversation_id
    state.problem = None
    state.unsaved = False
    if conversation_id is None:
        state.messages = []
        state.conversation = None
        st.query_params.pop("c", None)
    else:
        st.query_params["c"] = str(conversation_id)


def params() -> GenerationParams:
    conversation: Conversation | None = st.session_state.conversation
    return conversation.params if conversation is not None else st.session_state.draft


def set_params(store: HistoryStore, **changes: Any) -> str | None:
    """Applies changed parameters to the open conversation (or the draft); returns why not, if invalid."""
    try:
        updated = GenerationParams.model_validate({**params().model_dump(), **changes})
    except ValidationError as exc:
        return "; ".join(f"{error['loc'][0]}: {error['msg']}" for error in exc.errors())
    conversation: Conversation | None = st.session_state.conversation
    if conversation is None:
        st.session_state.draft = updated
        return None
    conversation.params = updated
    try:
        store.update_params(conversation.id, updated)
    except StoreUnavailable:
        return "saved for this session only: the history database is down"
    return None


def models(settings: Settings, refresh: bool = False) -> ModelList:
    if refresh or st.session_state.models is None or st.session_state.models.problem:
        st.session_state.models = list_models(settings)
    result: ModelList = st.session_state.models
    return result


def messages() -> list[Message]:
    result: list[Message] = st.session_state.messages
    return result


def set_problem(problem: ChatProblem | None, text: str = "") -> None:
    st.session_state.problem = None if problem is None else (problem, text)
