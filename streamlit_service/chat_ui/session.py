"""The page's state across reruns: the signed-in person's history, the open conversation and its parameters."""

import re
import time
from typing import Any

import streamlit as st
from pydantic import ValidationError

from chat_ui import auth
from chat_ui.backend import ModelList, list_models
from chat_ui.config import Settings
from chat_ui.errors import ChatProblem
from chat_ui.history import History, HistoryUnavailable, HostHistory
from chat_ui.host import HostClient, host_client
from chat_ui.people import Credentials, SignedIn
from chat_ui.schemas import Conversation, GenerationParams, Message
from chat_ui.store import LocalHistory

CONVERSATION_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def person() -> SignedIn:
    """The person the gate at the top of the page signed in (auth.require_person)."""
    signed_in: SignedIn = st.session_state.person
    return signed_in


def credentials(settings: Settings) -> Credentials:
    """What chat requests carry for the person (their token to the host, or the service key naming them)."""
    return auth.credentials(settings)


def host(settings: Settings) -> HostClient:
    """The agent host, as the signed-in person (their sign-in token is the bearer)."""
    return host_client(settings.agent_host_url, person().token, settings.request_timeout)


def history_of(settings: Settings) -> History:
    """The person's conversations: the agent host's sessions, or the UI's own tables in proxy-only mode."""
    if settings.agent_host_url:
        sampling: dict[str, dict[str, Any]] = st.session_state.setdefault("sampling", {})
        return HostHistory(host(settings), settings.default_model, sampling)
    return LocalHistory(settings.database_url.get_secret_value(), str(person().account.id))


def init(settings: Settings) -> None:
    state = st.session_state
    owner = str(person().account.id)
    if state.get("owner") != owner:  # a first run, or someone else signed in on this page
        requested = st.query_params.get("c")
        state.owner = owner
        state.conv_id = requested if requested and CONVERSATION_ID.match(requested) else None
        state.conversation = None
        state.messages = []
        state.draft = GenerationParams(model=settings.default_model, max_tokens=min(512, settings.max_tokens_limit))
        state.draft_collections = []
        state.models = None
        state.problem = None
        state.pending = None
        state.search = ""
        state.list_limit = 30
        state.unsaved = False


def load_conversation(history: History) -> None:
    """Reads the open conversation from its history; while that is down, the page keeps what it shows."""
    state = st.session_state
    if state.conv_id is None:
        state.conversation = None  # a new chat, or one kept unsaved while the history is down
        return
    try:
        conversation = history.get(state.conv_id)
        if conversation is None:
            select(None)
            return
        state.conversation = conversation
        state.messages = history.messages(conversation.id)
        state.unsaved = False
    except HistoryUnavailable:
        pass  # the status panel says so; what is on screen stays


def select(conversation_id: str | None) -> None:
    state = st.session_state
    state.conv_id = conversation_id
    state.problem = None
    state.unsaved = False
    if conversation_id is None:
        state.messages = []
        state.conversation = None
        st.query_params.pop("c", None)
    else:
        st.query_params["c"] = conversation_id


def params() -> GenerationParams:
    conversation: Conversation | None = st.session_state.conversation
    return conversation.params if conversation is not None else st.session_state.draft


def set_params(history: History, **changes: Any) -> str | None:
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
        history.update_params(conversation.id, updated)
    except HistoryUnavailable as exc:
        return f"kept for this page only: {exc}"
    return None


def models(settings: Settings, refresh: bool = False) -> ModelList:
    if refresh or st.session_state.models is None or st.session_state.models.problem:
        st.session_state.models = list_models(settings, credentials(settings))
    result: ModelList = st.session_state.models
    return result


def models_changed(settings: Settings) -> bool:
    """Reads the model list again when it marks a model unavailable and is older than three status checks, so
    a model pulled meanwhile shows as served once the proxy serves it; True when what is served changed."""
    listing: ModelList | None = st.session_state.get("models")
    if listing is None or not listing.waiting():
        return False
    if time.monotonic() - listing.read_at < settings.status_interval * 3:
        return False
    fresh = list_models(settings, credentials(settings))
    st.session_state.models = fresh
    return fresh.served() != listing.served() or bool(fresh.problem) != bool(listing.problem)


def messages() -> list[Message]:
    result: list[Message] = st.session_state.messages
    return result


def set_problem(problem: ChatProblem | None, text: str = "") -> None:
    st.session_state.problem = None if problem is None else (problem, text)
