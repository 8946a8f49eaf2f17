"""The sidebar: conversations (new, search, open, rename, delete, export), agent mode and the connection status."""

import time

import streamlit as st

from chat_ui import agent_view, session
from chat_ui.config import Settings
from chat_ui.export import file_stem, to_json, to_markdown
from chat_ui.history import History, HistoryUnavailable
from chat_ui.status import check_all


def render(settings: Settings, history: History) -> None:
    st.button(
        "New chat",
        icon=":material/add:",
        key="new-chat",
        on_click=session.select,
        args=(None,),
        width="stretch",
    )
    st.text_input("Search chats", key="search", placeholder="title or text…")
    conversation_list(history)
    current_conversation(history)
    st.divider()
    agent_view.sidebar_controls(settings)
    st.divider()
    status_panel(settings, history)


def conversation_list(history: History) -> None:
    limit = st.session_state.list_limit
    try:
        found = history.summaries(st.session_state.search, limit=limit + 1)
    except HistoryUnavailable as exc:
        st.caption(f"History unavailable: {exc}.")
        return
    if not found:
        st.caption("No chats match." if st.session_state.search else "No chats yet.")
    for summary in found[:limit]:
        current = summary.id == st.session_state.conv_id
        st.button(
            summary.title,
            key=f"open-{summary.id}",
            on_click=session.select,
            args=(summary.id,),
            type="primary" if current else "secondary",
            width="stretch",
        )
    if len(found) > limit:
        st.button("Show more", key="more-chats", on_click=_show_more)


def _show_more() -> None:
    st.session_state.list_limit += 30


def current_conversation(history: History) -> None:
    conversation = st.session_state.conversation
    if conversation is None:
        if st.session_state.unsaved:
            st.warning(f"This chat is not being saved: the {history.name} is unreachable.")
        return
    with st.expander("This chat: rename · export · delete"):
        st.text_input(
            "Title",
            value=conversation.title,
            key=f"title-{conversation.id}",
            on_change=_rename,
            args=(history, conversation.id),
            max_chars=120,
        )
        messages = session.messages()
        stem = file_stem(conversation)
        left, right = st.columns(2)
        left.download_button(
            "Markdown", to_markdown(conversation, messages), f"{stem}.md", "text/markdown", key="export-md"
        )
        right.download_button(
            "JSON", to_json(conversation, messages), f"{stem}.json", "application/json", key="export-json"
        )
        st.button(
            "Delete chat", icon=":material/delete:", key="delete-chat", on_click=_ask_delete, args=(conversation.id,)
        )
    if st.session_state.get("confirm_delete") == conversation.id:
        confirm_delete(history, conversation.id, conversation.title)


def _rename(history: History, conversation_id: str) -> None:
    title = str(st.session_state.get(f"title-{conversation_id}", "")).strip()
    if not title:
        return
    try:
        history.rename(conversation_id, title)
        st.session_state.conversation.title = title
    except HistoryUnavailable:
        st.toast(f"Not renamed: the {history.name} is unreachable.")


def _ask_delete(conversation_id: str) -> None:
    st.session_state.confirm_delete = conversation_id


def _forget_delete() -> None:
    st.session_state.confirm_delete = None


# The dialog stays open across reruns until answered or dismissed (a flag, so its buttons work every time).
@st.dialog("Delete this chat?", on_dismiss=_forget_delete)
def confirm_delete(history: History, conversation_id: str, title: str) -> None:
    st.write(f"“{title}” and all its messages will be deleted. This cannot be undone.")
    left, right = st.columns(2)
    if left.button("Delete", type="primary", key="confirm-delete"):
        try:
            history.delete(conversation_id)
        except HistoryUnavailable:
            st.error(f"Not deleted: the {history.name} is unreachable.")
            return
        _forget_delete()
        session.select(None)
        st.rerun()
    if right.button("Cancel", key="cancel-delete"):
        _forget_delete()
        st.rerun()


def status_panel(settings: Settings, history: History) -> None:
    @st.fragment(run_every=settings.status_interval)
    def panel() -> None:
        cached = st.session_state.get("statuses")
        fresh = cached is not None and time.monotonic() - cached[0] < settings.status_interval
        if st.session_state.get("in_full_run") and fresh and cached is not None:
            statuses = cached[1]  # a message send must not wait for three probes the timer just ran
        else:
            statuses = check_all(settings, history)
            st.session_state.statuses = (time.monotonic(), statuses)
        st.markdown("**Connections**")
        for status in statuses:
            st.markdown(f"{status.icon} **{status.name}** · checked {status.checked_at:%H:%M:%S}")
            if status.reason:
                st.caption(f"{status.reason} — {status.action}")
        levels = tuple(status.level for status in statuses)
        before = st.session_state.get("status_levels")
        st.session_state.status_levels = levels
        if before is not None and before != levels:
            # A service came back or went away: reload the model list and history without a page reload.
            st.session_state.models = None
            if not st.session_state.get("in_full_run"):
                st.rerun(scope="app")
        elif not st.session_state.get("in_full_run") and session.models_changed(settings):
            st.rerun(scope="app")  # a model became served (pulled on the Models page) or stopped being

    panel()
