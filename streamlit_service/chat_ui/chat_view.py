"""The main column: model picker, per-conversation controls, the messages and what can be done with them."""

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from chat_ui import agent_view, session, sources
from chat_ui.config import Settings
from chat_ui.history import History, HistoryUnavailable
from chat_ui.schemas import SYSTEM_PROMPT_MAX, TEMPERATURE_RANGE, Facts, Message


def model_picker(settings: Settings, history: History) -> None:
    params = session.params()
    left, right = st.columns([5, 1], vertical_alignment="bottom")
    refresh = right.button(
        "Models", icon=":material/refresh:", key="refresh-models", help="Read the model list from the backend again"
    )
    listing = session.models(settings, refresh=refresh)
    options = {option.id: option for option in listing.options}
    ids = list(options)
    if params.model not in options:
        ids.insert(0, params.model)  # kept even when the backend does not list it now
    labels = {model: options[model].label() if model in options else f"{model} (not listed now)" for model in ids}
    # Streamlit keeps a selectbox's value by its label: a new key per label set stops a label becoming the model.
    key = f"model-{st.session_state.conv_id}-{hash(tuple(labels.values()))}"
    by_label = {label: model for model, label in labels.items()}
    left.selectbox(
        "Model",
        ids,
        index=ids.index(params.model),
        key=key,
        format_func=labels.__getitem__,
        on_change=lambda: _apply(history, model=by_label.get(st.session_state[key], st.session_state[key])),
    )
    if listing.problem:
        st.warning(f"Model list unavailable ({listing.problem}); the status panel says why.", icon=":material/warning:")
    elif params.model in options and not options[params.model].served:
        st.warning(
            f"{options[params.model].label()}: the proxy may answer from a fallback model; each answer says which.",
            icon="⚠️",
        )


def _apply(history: History, **changes: object) -> None:
    refused = session.set_params(history, **changes)
    if refused:
        st.toast(f"Not applied: {refused}")


def controls(settings: Settings, history: History) -> None:
    params = session.params()
    cid = st.session_state.conv_id
    with st.expander("Settings for this chat: temperature, max tokens, top-p, system prompt"):
        fields = {
            "temperature": st.slider(
                "Temperature", *TEMPERATURE_RANGE, value=params.temperature, step=0.05, key=f"temperature-{cid}"
            ),
            "max_tokens": st.number_input(
                "Max tokens", 1, settings.max_tokens_limit, value=min(params.max_tokens, settings.max_tokens_limit),
                step=16, key=f"max_tokens-{cid}",
            ),
            "top_p": st.slider("Top-p", 0.05, 1.0, value=max(params.top_p, 0.05), step=0.05, key=f"top_p-{cid}"),
            "system_prompt": st.text_area(
                "System prompt", value=params.system_prompt, max_chars=SYSTEM_PROMPT_MAX, key=f"system-{cid}"
            ),
        }  # fmt: skip
        changed = {name: value for name, value in fields.items() if getattr(params, name) != value}
        if changed:
            _apply(history, **changed)


def conversation_messages(history: History) -> None:
    """The open conversation as its history holds it: each message, an answer's sources, steps and facts."""
    messages = session.messages()
    if not messages:
        st.caption("Pick a model and ask something. Answers stream in; Stop ends one early.")
    conversation = st.session_state.conversation
    for index, message in enumerate(messages):
        with st.chat_message(message.role):
            meta = message.meta
            run = meta.agent_run if meta is not None else None
            just_streamed = _just_streamed(message, index == len(messages) - 1)
            steps = run.steps if run is not None and run.steps else (just_streamed.steps if just_streamed else [])
            if steps:
                agent_view.render_events(steps)
            st.markdown(message.content or "_(no text)_")
            if meta is not None:
                sources.render(meta.citations, conversation.collections if conversation is not None else [])
            if run is not None or steps:
                agent = run.agent if run is not None else ""
                st.caption(agent_view.run_summary(steps) or f"Answered by agent **{agent}**")
            facts = message.facts
            if just_streamed is not None and (facts is None or not facts.model):
                facts = just_streamed.facts.with_context_of(facts)
            label = "facts · copy" if facts else "copy"
            with st.expander(label):
                if facts:
                    st.caption(facts.line())
                st.code(message.content, language="markdown", wrap_lines=True)
                if message.id > 0:
                    st.button(
                        "Delete message", icon=":material/delete:", key=f"delete-message-{message.id}",
                        on_click=_delete_message, args=(history, message),
                    )  # fmt: skip


@dataclass
class JustStreamed:
    """What this page saw of the answer it streamed last (timings, an agent's steps): shown with that answer
    while the page lives, beside what its history keeps."""

    conversation_id: str
    facts: Facts
    steps: list[dict[str, Any]] = field(default_factory=list)
    message_id: int | None = None  # bound to the newest answer on the first reload after the turn


def _just_streamed(message: Message, last: bool) -> JustStreamed | None:
    seen: JustStreamed | None = st.session_state.get("just_streamed")
    conversation = st.session_state.conversation
    if seen is None or conversation is None or seen.conversation_id != conversation.id or message.role != "assistant":
        return None
    if seen.message_id is None and last:
        seen.message_id = message.id
    return seen if seen.message_id == message.id else None


def problem_and_actions(history: History) -> None:
    messages = session.messages()
    if st.session_state.problem is not None:
        problem, text = st.session_state.problem
        with st.chat_message("assistant", avatar=":material/error:"):
            st.error(f"**{problem.message}**  \n{problem.action}")
            st.caption("Your message, to resend when the problem is fixed:")
            st.code(text, language=None, wrap_lines=True)
            st.button("Resend", icon=":material/send:", key="resend", on_click=_resend, args=(text,))
    if not messages:
        return
    left, right = st.columns([1, 4])
    if messages[-1].role == "assistant":
        left.button("Regenerate", icon=":material/refresh:", key="regenerate", on_click=_regenerate, args=(history,))
    last_user = next((m for m in reversed(messages) if m.role == "user"), None)
    if last_user is not None:
        with right.popover("Edit last message", icon=":material/edit:"):
            st.text_area("Your last message", value=last_user.content, key=f"edit-{last_user.id}")
            st.button("Send edited", key="send-edited", on_click=_edit_and_resend, args=(history, last_user))


def _resend(text: str) -> None:
    """Answers the question again when the history ends with it, else sends it anew (it was never kept)."""
    messages = session.messages()
    kept = bool(messages) and messages[-1].role == "user" and messages[-1].content == text
    st.session_state.pending = ("again", None) if kept else ("send", text)


def _regenerate(history: History) -> None:
    messages = session.messages()
    if messages and messages[-1].role == "assistant" and _drop_after(history, messages, len(messages) - 2):
        st.session_state.pending = ("again", None)


def _edit_and_resend(history: History, message: Message) -> None:
    text = str(st.session_state.get(f"edit-{message.id}", "")).strip()
    if not text:
        return
    messages = session.messages()
    index = next(i for i, m in enumerate(messages) if m is message or (m.id == message.id and m.id > 0))
    conversation = st.session_state.conversation
    if conversation is not None and message.id > 0:
        try:
            history.replace_message(conversation.id, message.id, text)
        except HistoryUnavailable as exc:
            st.toast(f"Not edited: {exc}")
            return
    messages[index] = message.model_copy(update={"content": text})
    if _drop_after(history, messages, index):
        st.session_state.pending = ("again", None)


def _drop_after(history: History, messages: list[Message], index: int) -> bool:
    """Forgets every message after `index`, in the history and on the page; False if the history refused."""
    keep = messages[index]
    conversation = st.session_state.conversation
    if conversation is not None and keep.id > 0 and index < len(messages) - 1:
        try:
            history.truncate_after(conversation.id, keep.id)
        except HistoryUnavailable as exc:
            st.toast(f"Not changed: {exc}")
            return False
    del messages[index + 1 :]
    return True


def _delete_message(history: History, message: Message) -> None:
    conversation = st.session_state.conversation
    if conversation is None:
        return
    try:
        history.delete_message(conversation.id, message.id)
    except HistoryUnavailable as exc:
        st.toast(f"Not deleted: {exc}")
        return
    st.session_state.messages = [m for m in session.messages() if m.id != message.id]
