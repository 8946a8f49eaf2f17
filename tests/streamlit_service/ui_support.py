"""Helpers for the UI's page tests."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from chat_ui.people import SignedIn
from devstack.config import REPO_ROOT
from procs import scaled

MAIN = REPO_ROOT / "streamlit_service" / "main.py"
USAGE_PAGE = REPO_ROOT / "streamlit_service" / "pages" / "1_Usage.py"


def open_page(person: SignedIn, path: Path = MAIN, **query: str) -> AppTest:
    """The page as `person` sees it (AppTest sends no cookie: the gate finds the person in the session state)."""
    app = AppTest.from_file(str(path), default_timeout=scaled(30))
    app.session_state["person"] = person
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def send(app: AppTest, text: str) -> AppTest:
    app.chat_input[0].set_value(text)
    return app.run()


def texts(app: AppTest) -> str:
    """Every markdown, caption and alert on the page, for assertions on what a person reads."""
    parts = [element.value for element in (*app.markdown, *app.caption)]
    parts += [str(element.value) for element in (*app.error, *app.warning, *app.info)]
    return "\n".join(str(part) for part in parts)


def button(app: AppTest, key: str):  # type: ignore[no-untyped-def]
    return app.button(key=key)
