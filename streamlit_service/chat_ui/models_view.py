"""The Models page's parts: each runtime's installed models, pulling one with a live progress bar, deleting one
after a confirmation. The runtimes are called from here, on the UI's server (chat_ui.runtime_client)."""

from contextlib import closing

import pandas as pd
import streamlit as st

from chat_ui.config import Settings
from chat_ui.runtime_client import (
    InstalledModel,
    PullProgress,
    RuntimeModels,
    RuntimeProblem,
    check_name,
    delete_model,
    human_size,
    pull_lines,
)

FLASH = "models_flash"
LAST_PULL = "models_last_pull"
CONFIRM = "models_confirm_delete"
UNREACHABLE_ACTION = "start it with `make up` (`make status` shows which runtime is down, `make logs` why)"


def forget_chat_models() -> None:
    """The chat page reads its model list again on its next run: a pulled model shows, a deleted one goes."""
    st.session_state["models"] = None


def rows_of(models: list[InstalledModel]) -> pd.DataFrame:
    """The table a runtime's models are shown in."""
    rows = [
        {
            "model": m.name,
            "size": human_size(m.size),
            "family": m.family or "—",
            "parameters": m.parameter_size or "—",
            "quantisation": m.quantization or "—",
            "loaded": "unknown" if m.loaded is None else "yes" if m.loaded else "no",
            "modified": f"{m.modified_at:%Y-%m-%d %H:%M}" if m.modified_at else "—",
        }
        for m in models
    ]
    columns = ["model", "size", "family", "parameters", "quantisation", "loaded", "modified"]
    return pd.DataFrame(rows, columns=columns)


def show_flash() -> None:
    """The outcome of the last pull (its full bar) or delete, after the rerun that refreshed the tables."""
    if pulled := st.session_state.pop(LAST_PULL, None):
        st.progress(1.0, text="success")
        st.success(pulled, icon=":material/check:")
    if message := st.session_state.pop(FLASH, None):
        st.success(message, icon=":material/check:")


def runtime_section(found: RuntimeModels, several: bool) -> None:
    if several:
        st.subheader(found.url)
    if found.problem:
        st.error(f"Runtime unreachable: {found.problem}. To fix: {UNREACHABLE_ACTION}.", icon=":material/error:")
        return
    if not found.models:
        st.info(f"{found.url} has no models yet: pull one below.", icon=":material/info:")
        return
    st.caption(f"{len(found.models)} installed on {found.url}")
    st.table(rows_of(found.models).set_index("model"))


def pull_form(settings: Settings, runtimes: list[RuntimeModels]) -> None:
    st.subheader("Pull a model")
    st.caption(
        "From the runtime's registry, as `ollama pull` does. Stay on this page until it ends: leaving it closes "
        "the pull's connection, and pulling the same name again resumes from what was downloaded."
    )
    urls = [runtime.url for runtime in runtimes]
    with st.form("pull_model"):
        left, right = st.columns([3, 2]) if len(urls) > 1 else (st.container(), None)
        name = left.text_input("Model name", placeholder="qwen2.5:0.5b", max_chars=256, key="pull_name")
        url = right.selectbox("Into runtime", urls, key="pull_runtime") if right is not None else urls[0]
        submitted = st.form_submit_button("Pull", type="primary", icon=":material/download:")
    if submitted and url:
        pull(settings, url, name)


def pull(settings: Settings, url: str, typed: str) -> None:
    """Streams the runtime's pull into a progress bar, one update per line; success reloads the page's tables."""
    try:
        name = check_name(typed)
    except RuntimeProblem as exc:
        st.error(str(exc), icon=":material/error:")
        return
    bar = st.progress(0.0, text=f"pulling {name} …")
    progress = PullProgress()
    try:
        with closing(pull_lines(url, name, settings.probe_timeout, settings.request_timeout)) as lines:
            for line in lines:
                progress.update(line)
                bar.progress(progress.fraction, text=progress.text())
    except RuntimeProblem as exc:
        st.error(f"Pull of {name} failed: {exc}", icon=":material/error:")
        return
    if not progress.done:
        st.error(f"Pull of {name} ended before the runtime said success; pull again to resume.")
        return
    forget_chat_models()
    st.session_state[LAST_PULL] = f"Pulled {name} into {url}."
    st.rerun()


def delete_picker(settings: Settings, runtimes: list[RuntimeModels]) -> None:
    choices = [(runtime.url, model.name) for runtime in runtimes for model in runtime.models]
    if not choices:
        return
    st.subheader("Delete a model")
    several = len(runtimes) > 1
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    chosen = left.selectbox(
        "Model to delete", choices, key="delete_choice", format_func=lambda c: f"{c[1]} on {c[0]}" if several else c[1]
    )
    if right.button("Delete…", icon=":material/delete:", key="delete_model") and chosen is not None:
        st.session_state[CONFIRM] = chosen
    pending = st.session_state.get(CONFIRM)
    if pending is not None and tuple(pending) in choices:
        url, name = pending
        confirm_delete(url, name, settings.request_timeout)


def _forget_confirm() -> None:
    st.session_state.pop(CONFIRM, None)


# Open across reruns until answered or dismissed (a flag in the session state, as the chat's delete dialog).
@st.dialog("Delete this model?", on_dismiss=_forget_confirm)
def confirm_delete(url: str, name: str, timeout: float) -> None:
    st.write(
        f"**{name}** will be deleted from {url}, with every file no other model uses. Pull it again to get it back."
    )
    left, right = st.columns(2)
    confirmed = left.button("Delete", type="primary", key="confirm_delete_model")
    if right.button("Cancel", key="cancel_delete_model"):
        _forget_confirm()
        st.rerun()
    if not confirmed:
        return
    try:
        delete_model(url, name, timeout)
    except RuntimeProblem as exc:
        st.error(f"Not deleted: {exc}", icon=":material/error:")  # Cancel stays, above
        return
    _forget_confirm()
    forget_chat_models()
    st.session_state[FLASH] = f"Deleted {name} from {url}."
    st.rerun()
