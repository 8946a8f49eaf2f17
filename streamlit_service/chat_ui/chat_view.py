"""The main column: model picker, per-conversation controls, the messages and what can be done with them."""

import streamlit as st

from chat_ui import agent_view, session, sources
from chat_ui.config import Settings
from chat_ui.schemas import SYSTEM_PROMPT_MAX, TEMPERATURE_RANGE, Message
from chat_ui.store import HistoryStore, StoreUnavailable


def model_picker(settings: Settings, store: HistoryStore) -> None:
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
        on_change=lambda: _apply(store, model=by_label.get(st.session_state[key], st.session_state[key])),
    )
    if listing.problem:
        st.warning(f"Model list unavailable ({listing.problem}); the status panel says why.", icon=":material/warning:")
    elif params.model in options and not options[params.model].served:
        st.warning(
            f"{options[params.model].label()}: the proxy may answer from a fallback model; each answer says which.",
            icon="⚠️",
        )


def _apply(store: HistoryStore, **changes: object) -> None:
    refused = session.set_params(store, **changes)
    if refused:
        st.toast(f"Not applied: {refused}")


def controls(settings: Settings, store: HistoryStore) -> None:
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
            _apply(store, **changed)


def history(settings: Settings) -> None:
    messages = session.messages()
    if not messages:
        st.caption("Pick a model and ask something. Answers stream in; Stop ends one early.")
    saved = sources.conversation_extras(settings)
    for message in messages:
        with st.chat_message(message.role):
            extras = sources.extras_of(message, saved) if message.role == "assistant" else None
            if extras is not None and extras.steps:
                agent_view.render_events(extras.steps)
            st.markdown(message.content or "_(no text)_")
            if extras is not None:
                sources.render(extras.citations, extras.collections)
                if extras.steps:
                    st.caption(agent_view.run_summary(extras.steps))
            label = "facts · copy" if message.facts else "copy"
            with st.expander(label):
                if message.facts:
                    st.caption(message.facts.line())
                st.code(message.content, language="markdown", wrap_lines=True)


def problem_and_actions(store: HistoryStore) -> None:
    messages = session.messages()
    if st.session_state.problem is not None:
        problem, text = st.session_state.problem
        with st.chat_message("assistant", avatar=":material/error:"):
            st.error(f"**{problem.message}**  \n{problem.action}")
            st.caption("Your message is kept in the chat; resend it when the problem is fixed:")
            st.code(text, language=None, wrap_lines=True)
            st.button("Resend", icon=":material/send:", key="resend", on_click=_resend)
    if not messages:
        return
    left, right = st.columns([1, 4])
    if messages[-1].role == "assistant":
        left.button("Regenerate", icon=":material/refresh:", key="regenerate", on_click=_regenerate, args=(store,))
    last_user = next((m for m in reversed(messages) if m.role == "user"), None)
    if last_user is not None:
        with right.popover("Edit last message", icon=":material/edit:"):
            st.text_area("Your last message", value=last_user.content, key=f"edit-{last_user.id}")
            st.button("Send edited", key="send-edited", on_click=_edit_and_resend, args=(store, last_user))


def _resend() -> None:
    st.session_state.pending = ("again", None)


def _regenerate(store: HistoryStore) -> None:
    messages = session.messages()
    if messages and messages[-1].role == "assistant":
        _drop_after(store, messages, len(messages) - 2)
    st.session_state.pending = ("again", None)


def _edit_and_resend(store: HistoryStore, message: Message) -> None:
    text = str(st.session_state.get(f"edit-{message.id}", "")).strip()
    if not text:
        return
    messages = session.messages()
    index = next(i for i, m in enumerate(messages) if m is message or (m.id == message.id and m.id > 0))
    try:
        if message.id > 0:
            store.edit_message(message.id, text)
    except StoreUnavailable:
        st.session_state.unsaved = True
    messages[index] = message.model_copy(update={"content": text})
    _drop_after(store, messages, index)
    st.session_state.pending = ("again", None)


def _drop_after(store: HistoryStore, messages: list[Message], index: int) -> None:
    """Forgets every message after `index`, in the page and in the database."""
    keep = messages[index]
    conversation = st.session_state.conversation
    try:
        if conversation is not None and keep.id > 0:
            store.delete_messages_after(conversation.id, keep.id)
    except StoreUnavailable:
        st.session_state.unsaved = True
    del messages[index + 1 :]
