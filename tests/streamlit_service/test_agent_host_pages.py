"""The UI in agent-host mode, driven by AppTest: the Documents page, chat with sources, and agent mode.

Against a real agent host process (its own database and Chroma dir) on the real proxy, runtimes and PostgreSQL.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fake_model_server import FakeModelServer
from streamlit.testing.v1 import AppTest
from ui_support import open_page
from ui_support import texts as page_texts

from chat_ui.config import get_settings
from chat_ui.extras_store import ExtrasStore
from chat_ui.store import HistoryStore
from devstack.config import REPO_ROOT
from devstack.probe import free_port
from procs import MASTER_KEY, PostgresInstance, start_agent_host

DOCUMENTS_PAGE = REPO_ROOT / "streamlit_service" / "pages" / "2_Documents.py"
HOST_KEY = "sk-ui-pages-host-key-0123"
# The embedding model's ONNX export, cached across runs like the host's own RAG tests do; never in the repo.
MODEL = "smollm2:135m"
PENGUINS_MD = """# Emperor penguins

Emperor penguins breed in the middle of the Antarctic winter. The male keeps the single egg warm on his feet
for about two months, without eating, while the female feeds at sea.

## Diet

Emperor penguins eat fish, krill and squid, caught in dives of up to five hundred metres.
"""
VOLCANO_TXT = (
    "Mount Etna on Sicily is one of the most active volcanoes in the world. Its eruptions send lava flows "
    "down the eastern slopes into the Valle del Bove, a wide valley that protects the villages below."
)
MAX_FILE_BYTES = 20_000
PENGUIN_QUESTION = "How long does the male emperor penguin keep the egg warm?"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def host(proxy: str, postgres: PostgresInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real agent host on its own database (the UI's history lives there too, as in the stack)."""
    database_url = postgres.new_database("ui_pages")
    process, url = start_agent_host(
        proxy, database_url, MASTER_KEY, api_key=HOST_KEY, RAG_MAX_FILE_BYTES=str(MAX_FILE_BYTES)
    )
    yield url, database_url
    process.stop()


@pytest.fixture
def host_ui(
    host: tuple[str, str], proxy: str, runtimes: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """The UI in agent-host mode on that host, with an empty history; yields the host's URL."""
    url, database_url = host
    monkeypatch.chdir(tmp_path)  # no streamlit_service/.env from a developer's machine leaks in
    monkeypatch.setenv("LITELLM_BASE_URL", f"{proxy}/v1")
    monkeypatch.setenv("LITELLM_API_KEY", MASTER_KEY)
    monkeypatch.setenv("AGENT_HOST_URL", url)
    monkeypatch.setenv("AGENT_HOST_API_KEY", HOST_KEY)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("RUNTIME_URLS", ",".join(runtimes))
    get_settings.cache_clear()
    HistoryStore(database_url).ping()
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE ui_conversations RESTART IDENTITY CASCADE")
    yield url
    get_settings.cache_clear()


def call(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", headers={"Authorization": f"Bearer {HOST_KEY}"}, timeout=120, **kwargs)


def indexed_collection(url: str) -> str:
    """A collection holding the two test documents, made through the API (the page's own upload is tested apart)."""
    name = f"zoo-{uuid.uuid4().hex[:6]}"
    assert call(url, "POST", "/rag/collections", json={"name": name}).status_code == 201
    files = [("files", ("penguins.md", PENGUINS_MD.encode(), "text/markdown"))]
    files.append(("files", ("etna.txt", VOLCANO_TXT.encode(), "text/plain")))
    response = call(url, "POST", f"/rag/collections/{name}/documents", params={"wait": "true"}, files=files)
    assert response.status_code == 200, response.text
    return name


def documents_of(url: str, collection: str) -> dict[str, dict[str, Any]]:
    response = call(url, "GET", f"/rag/collections/{collection}/documents")
    assert response.status_code == 200, response.text
    return {document["filename"]: document for document in response.json()}


def chunks(count: int) -> str:
    return "1 chunk" if count == 1 else f"{count} chunks"


def button(app: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in app.button if b.label == label)


def send(app: AppTest, text: str) -> AppTest:
    app.chat_input[0].set_value(text)
    return app.run(timeout=120)


def short_answers(app: AppTest) -> AppTest:
    app.number_input(key="max_tokens-None").set_value(24)
    return app.run()


def texts(app: AppTest) -> str:
    """What a person reads on the page, success messages included."""
    return "\n".join([page_texts(app), *(str(element.value) for element in app.success)])


def ui_database() -> str:
    return get_settings().database_url.get_secret_value()


# Proxy mode: no host, so no documents and no agents, and the page says why in one line.


def test_proxy_mode_hides_documents_and_agents_and_says_why(ui_env: FakeModelServer) -> None:
    page = open_page(DOCUMENTS_PAGE)
    assert not page.exception
    assert "AGENT_HOST_URL" in texts(page) and not page.file_uploader and not page.button
    chat = open_page()
    assert not chat.exception and not chat.multiselect and not chat.toggle
    assert "need the agent host" in texts(chat)


# The Documents page.


def test_create_a_collection_upload_several_files_and_see_progress_and_chunk_counts(host_ui: str) -> None:
    name = f"ui-{uuid.uuid4().hex[:6]}"
    page = open_page(DOCUMENTS_PAGE)
    page.text_input(key="new-collection-name").set_value(name)
    page.number_input(key="new-collection-size").set_value(64)
    button(page, "Create").click().run()
    assert not page.exception and f"Collection {name} created." in texts(page)
    created = next(c for c in call(host_ui, "GET", "/rag/collections").json() if c["name"] == name)
    assert created["chunk_tokens"] == 64

    page.file_uploader[0].set_value(
        [
            ("penguins.md", PENGUINS_MD.encode(), "text/markdown"),
            ("etna.txt", VOLCANO_TXT.encode(), "text/plain"),
            ("blank.txt", b"   ", "text/plain"),
            ("huge.txt", b"word " * (MAX_FILE_BYTES // 4), "text/plain"),
        ]
    ).run()
    page.button(key="upload").click().run(timeout=120)
    assert not page.exception
    listed = documents_of(host_ui, name)
    assert set(listed) == {"penguins.md", "etna.txt"}
    bar = page.progress[0]
    total = sum(document["chunks"] for document in listed.values())
    assert bar.value == 100 and bar.text == f"Done: 2 of 4 files indexed, {chunks(total)}"
    shown = texts(page)
    for filename, document in listed.items():
        assert f"**{filename}** · :green[indexed] · {chunks(document['chunks'])}" in shown
    refused = next(line for line in shown.splitlines() if line.startswith("**blank.txt**"))
    assert "blank.txt" in refused and "(422)" in refused  # the host's reason, with its status
    too_big = next(line for line in shown.splitlines() if line.startswith("**huge.txt**"))
    assert ":red[rejected]" in too_big and "(413)" in too_big
    table = page.dataframe[0].value
    row = table[table["collection"] == name].iloc[0]
    assert (row["documents"], row["chunks"]) == (2, total)
    assert not page.file_uploader[0].value, "the picker is emptied for the next batch"


def test_the_same_file_again_is_reported_as_a_duplicate(host_ui: str) -> None:
    name = indexed_collection(host_ui)
    page = open_page(DOCUMENTS_PAGE)
    page.selectbox(key="documents_collection").set_value(name).run()
    page.file_uploader[0].set_value([("again.txt", VOLCANO_TXT.encode(), "text/plain")]).run()
    page.button(key="upload").click().run(timeout=60)
    assert "**again.txt** · :orange[duplicate" in texts(page)
    assert set(documents_of(host_ui, name)) == {"penguins.md", "etna.txt"}


def test_a_batch_refused_entirely_says_why_for_each_file(host_ui: str) -> None:
    name = indexed_collection(host_ui)
    page = open_page(DOCUMENTS_PAGE)
    page.selectbox(key="documents_collection").set_value(name).run()
    page.file_uploader[0].set_value([("empty.md", b"", "text/markdown"), ("blank.txt", b" ", "text/plain")]).run()
    page.button(key="upload").click().run(timeout=60)
    assert not page.exception and not page.progress
    problem = str(page.error[0].value)
    assert problem.startswith("Nothing indexed:") and "empty.md" in problem
    shown = texts(page)
    assert "**empty.md** · :red[rejected]" in shown and "**blank.txt** · :red[rejected]" in shown
    assert set(documents_of(host_ui, name)) == {"penguins.md", "etna.txt"}


def test_retrieval_testing_finds_the_chunk_of_the_right_file(host_ui: str) -> None:
    name = indexed_collection(host_ui)
    page = open_page(DOCUMENTS_PAGE)
    page.selectbox(key="documents_collection").set_value(name).run()
    page.text_input(key="retrieval-query").set_value("Which volcano sends lava into the Valle del Bove?")
    page.selectbox(key="retrieval-mode").set_value("vector")
    button(page, "Search").click().run()
    assert not page.exception
    first = next(line for line in texts(page).splitlines() if line.startswith("**#1**"))
    assert first.endswith("· etna.txt") and "score" in first
    assert any("Valle del Bove" in element.value for element in page.text)


def test_reindex_then_delete_a_document_and_delete_the_collection_only_after_confirming(host_ui: str) -> None:
    name = indexed_collection(host_ui)
    before = documents_of(host_ui, name)
    page = open_page(DOCUMENTS_PAGE)
    page.selectbox(key="documents_collection").set_value(name).run()
    page.button(key=f"reindex-{before['etna.txt']['id']}").click().run(timeout=60)
    assert "etna.txt re-indexed." in texts(page)
    assert documents_of(host_ui, name)["etna.txt"]["chunks"] == before["etna.txt"]["chunks"]

    page.button(key=f"delete-{before['etna.txt']['id']}").click().run()
    assert "etna.txt deleted." in texts(page)
    assert set(documents_of(host_ui, name)) == {"penguins.md"}

    page.button(key="delete-collection").click().run()
    assert name in [c["name"] for c in call(host_ui, "GET", "/rag/collections").json()], "asked first"
    page.button(key="confirm-delete-collection").click().run()
    assert name not in [c["name"] for c in call(host_ui, "GET", "/rag/collections").json()]
    assert f"Collection {name} deleted." in texts(page)


def test_an_invalid_collection_name_is_refused_with_the_hosts_reason(host_ui: str) -> None:
    page = open_page(DOCUMENTS_PAGE)
    page.text_input(key="new-collection-name").set_value("Bad Name!")
    button(page, "Create").click().run()
    assert not page.exception
    assert any(str(e.value).startswith("Not created:") and "(422)" in str(e.value) for e in page.error)


def test_a_host_that_is_down_is_explained_and_nothing_crashes(host_ui: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_HOST_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    page = open_page(DOCUMENTS_PAGE)
    assert not page.exception and "cannot reach the agent host" in texts(page)
    chat = open_page()
    assert not chat.exception and "Document collections unavailable: cannot reach the agent host" in texts(chat)


# Chat with documents.


def test_an_answer_from_documents_shows_its_sources_and_keeps_them_after_a_reload(host_ui: str) -> None:
    name = indexed_collection(host_ui)
    app = short_answers(open_page())
    app.multiselect(key="collections-None").set_value([name]).run()
    app = send(app, PENGUIN_QUESTION)
    assert not app.exception
    labels = [expander.label for expander in app.expander]
    assert any(label.startswith("[1] penguins.md") for label in labels), labels
    store = HistoryStore(ui_database())
    conversation = store.summaries()[0]
    answer = store.messages(conversation.id)[-1]
    extras = ExtrasStore(store, ui_database()).for_conversation(conversation.id)[answer.id]
    assert extras.collections == [name] and extras.citations[0].source == "penguins.md"
    assert "egg warm" in extras.citations[0].text

    reopened = open_page(c=str(conversation.id))
    assert any(e.label.startswith("[1] penguins.md") for e in reopened.expander)
    assert reopened.multiselect(key=f"collections-{conversation.id}").value == [name]


def test_a_question_the_documents_do_not_answer_gets_no_sources_and_says_so(host_ui: str) -> None:
    name = indexed_collection(host_ui)
    app = short_answers(open_page())
    app.multiselect(key="collections-None").set_value([name]).run()
    app = send(app, "What is the boiling point of liquid nitrogen in kelvin?")
    shown = texts(app)
    assert f"Searched {name}: nothing relevant, so no sources." in shown
    assert "could not find anything relevant" in shown
    assert not [e for e in app.expander if e.label.startswith("[1]")]


def test_a_deleted_collection_is_a_readable_error_not_a_model_error(host_ui: str) -> None:
    name = indexed_collection(host_ui)
    app = short_answers(open_page())
    app.multiselect(key="collections-None").set_value([name]).run()
    assert call(host_ui, "DELETE", f"/rag/collections/{name}").status_code == 204
    app = send(app, PENGUIN_QUESTION)
    shown = texts(app)
    assert not app.exception
    assert "Pick the chat's collections again" in shown and "not served" not in shown
    assert f"No longer on the agent host: {name}." in shown


# Agent mode.


def test_agent_mode_shows_each_step_and_keeps_them_with_the_answer(host_ui: str) -> None:
    app = open_page()
    app.toggle(key="agent_mode").set_value(True).run()
    assert "math" in app.selectbox(key="agent_name").options  # read from the host's GET /agents
    app.selectbox(key="agent_name").set_value("math").run()
    app = send(app, "What is 12 times 7?")
    assert not app.exception, app.exception
    labels = [expander.label for expander in app.expander]
    assert "Step 1: calculator" in labels, labels
    store = HistoryStore(ui_database())
    conversation = store.summaries()[0]
    answer = store.messages(conversation.id)[-1]
    assert answer.role == "assistant" and answer.content.strip()
    extras = ExtrasStore(store, ui_database()).for_conversation(conversation.id)[answer.id]
    assert extras.agent == "math"
    results = [step for step in extras.steps if step["type"] == "tool_result"]
    assert results[0]["name"] == "calculator" and results[0]["content"].strip() == "84"
    reopened = open_page(c=str(conversation.id))
    assert "Step 1: calculator" in [expander.label for expander in reopened.expander]


def test_agent_mode_with_the_host_gone_explains_and_keeps_the_question(
    host_ui: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page()
    app.toggle(key="agent_mode").set_value(True).run()
    monkeypatch.setenv("AGENT_HOST_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    app = send(app, "What is 2 plus 2?")
    assert not app.exception
    assert "The agent run failed: cannot reach the agent host" in texts(app)
    assert [m.content for m in HistoryStore(ui_database()).messages(1)] == ["What is 2 plus 2?"]
