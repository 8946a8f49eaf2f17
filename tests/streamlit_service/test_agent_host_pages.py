"""The UI in agent-host mode, driven by AppTest: the Documents page, chat with sources, agent mode, and one history.

Against a real agent host process (its own database and Chroma dir) on the real proxy, runtimes and PostgreSQL;
the pages act as people signed in on that host's database (their sign-in token is the host's bearer).
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
from chat_ui.people import SignedIn
from devstack.config import REPO_ROOT
from devstack.probe import free_port
from genailabs_accounts.store import AccountStore
from procs import HOST_KEY, MASTER_KEY, UI_PASSWORD, PostgresInstance, ensure_account, hub_url_of, start_agent_host

DOCUMENTS_PAGE = REPO_ROOT / "streamlit_service" / "pages" / "2_Documents.py"
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
# The UI's own history tables: proxy-only mode's, never written in agent-host mode.
UI_TABLES = ("ui_conversations", "ui_messages", "ui_answer_extras", "ui_conversation_collections")
PENGUIN_QUESTION = "How long does the male emperor penguin keep the egg warm?"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def host(proxy: str, postgres: PostgresInstance) -> Iterator[tuple[str, str]]:
    """A real agent host on its own database (its accounts too: the UI signs people in there)."""
    database_url = postgres.new_database("ui_pages")
    process, url = start_agent_host(
        proxy, database_url, MASTER_KEY, api_key=HOST_KEY, RAG_MAX_FILE_BYTES=str(MAX_FILE_BYTES)
    )
    yield url, database_url
    process.stop()


def signed_in(database_url: str, prefix: str, role: str) -> SignedIn:
    """A new person on that database (with their proxy key), signed in."""
    login = f"{prefix}.{uuid.uuid4().hex[:6]}"
    ensure_account(database_url, hub_url_of(database_url), login, role=role)
    store = AccountStore(database_url, hub_url_of(database_url))
    try:
        signin = store.sign_in(login, UI_PASSWORD)
    finally:
        store.close()
    return SignedIn(account=signin.account, token=signin.token)


@pytest.fixture(scope="module")
def admin(host: tuple[str, str]) -> SignedIn:
    return signed_in(host[1], "pages-admin", "admin")


@pytest.fixture(scope="module")
def someone(host: tuple[str, str]) -> SignedIn:
    return signed_in(host[1], "pages-user", "user")


@pytest.fixture
def host_ui(
    host: tuple[str, str], proxy: str, runtimes: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """The UI in agent-host mode on that host; yields the host's URL."""
    url, database_url = host
    monkeypatch.chdir(tmp_path)  # no streamlit_service/.env from a developer's machine leaks in
    monkeypatch.setenv("LITELLM_BASE_URL", f"{proxy}/v1")
    monkeypatch.setenv("LITELLM_API_KEY", MASTER_KEY)
    monkeypatch.setenv("AGENT_HOST_URL", url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("HUB_DATABASE_URL", hub_url_of(database_url))
    monkeypatch.setenv("RUNTIME_URLS", ",".join(runtimes))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def call(url: str, method: str, path: str, person: SignedIn, **kwargs: Any) -> httpx.Response:
    """The host's API as `person` (their sign-in token)."""
    headers = {"Authorization": f"Bearer {person.token}"}
    return httpx.request(method, f"{url}{path}", headers=headers, timeout=120, **kwargs)


def indexed_collection(url: str, person: SignedIn) -> str:
    """A collection of `person` holding the two test documents, made through the API."""
    name = f"zoo-{uuid.uuid4().hex[:6]}"
    assert call(url, "POST", "/rag/collections", person, json={"name": name}).status_code == 201
    files = [("files", ("penguins.md", PENGUINS_MD.encode(), "text/markdown"))]
    files.append(("files", ("etna.txt", VOLCANO_TXT.encode(), "text/plain")))
    response = call(url, "POST", f"/rag/collections/{name}/documents", person, params={"wait": "true"}, files=files)
    assert response.status_code == 200, response.text
    return name


def documents_of(url: str, collection: str, person: SignedIn) -> dict[str, dict[str, Any]]:
    response = call(url, "GET", f"/rag/collections/{collection}/documents", person)
    assert response.status_code == 200, response.text
    return {document["filename"]: document for document in response.json()}


def collection_names(url: str, person: SignedIn) -> list[str]:
    return [c["name"] for c in call(url, "GET", "/rag/collections", person).json()]


def stored(url: str, session_id: str, person: SignedIn) -> list[dict[str, Any]]:
    """The host's one copy of a conversation."""
    response = call(url, "GET", f"/sessions/{session_id}/messages", person)
    assert response.status_code == 200, response.text
    return list(response.json())


def on_screen(app: AppTest) -> list[tuple[str, str]]:
    """The conversation's messages as the page shows them (role and the text in each message's copy box)."""
    return [(message.name, message.code[-1].value) for message in app.chat_message]  # the copy box comes last


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


def conversation_of(app: AppTest) -> str:
    value = app.query_params["c"]
    return value[0] if isinstance(value, list) else str(value)


# Proxy mode: no host, so no documents and no agents, and the page says why in one line.


def test_proxy_mode_hides_documents_and_agents_and_says_why(ui_env: FakeModelServer, person: SignedIn) -> None:
    page = open_page(person, DOCUMENTS_PAGE)
    assert not page.exception
    assert "AGENT_HOST_URL" in texts(page) and not page.file_uploader and not page.button
    chat = open_page(person)
    assert not chat.exception and not chat.multiselect and not chat.toggle
    assert "need the agent host" in texts(chat)


# The Documents page.


def test_create_a_collection_upload_several_files_and_see_progress_and_chunk_counts(
    host_ui: str, admin: SignedIn
) -> None:
    name = f"ui-{uuid.uuid4().hex[:6]}"
    page = open_page(admin, DOCUMENTS_PAGE)
    page.text_input(key="new-collection-name").set_value(name)
    page.number_input(key="new-collection-size").set_value(64)
    button(page, "Create").click().run()
    assert not page.exception and f"Collection {name} created." in texts(page)
    created = next(c for c in call(host_ui, "GET", "/rag/collections", admin).json() if c["name"] == name)
    assert created["chunk_tokens"] == 64 and created["owner_id"] == str(admin.account.id)

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
    listed = documents_of(host_ui, name, admin)
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
    assert (row["documents"], row["chunks"], row["access"]) == (2, total, "yours")
    assert not page.file_uploader[0].value, "the picker is emptied for the next batch"


def test_the_same_file_again_is_reported_as_a_duplicate(host_ui: str, admin: SignedIn) -> None:
    name = indexed_collection(host_ui, admin)
    page = open_page(admin, DOCUMENTS_PAGE)
    page.selectbox(key="documents_collection").set_value(name).run()
    page.file_uploader[0].set_value([("again.txt", VOLCANO_TXT.encode(), "text/plain")]).run()
    page.button(key="upload").click().run(timeout=60)
    assert "**again.txt** · :orange[duplicate" in texts(page)
    assert set(documents_of(host_ui, name, admin)) == {"penguins.md", "etna.txt"}


def test_a_batch_refused_entirely_says_why_for_each_file(host_ui: str, admin: SignedIn) -> None:
    name = indexed_collection(host_ui, admin)
    page = open_page(admin, DOCUMENTS_PAGE)
    page.selectbox(key="documents_collection").set_value(name).run()
    page.file_uploader[0].set_value([("empty.md", b"", "text/markdown"), ("blank.txt", b" ", "text/plain")]).run()
    page.button(key="upload").click().run(timeout=60)
    assert not page.exception and not page.progress
    problem = str(page.error[0].value)
    assert problem.startswith("Nothing indexed:") and "empty.md" in problem
    shown = texts(page)
    assert "**empty.md** · :red[rejected]" in shown and "**blank.txt** · :red[rejected]" in shown
    assert set(documents_of(host_ui, name, admin)) == {"penguins.md", "etna.txt"}


def test_retrieval_testing_finds_the_chunk_of_the_right_file(host_ui: str, admin: SignedIn) -> None:
    name = indexed_collection(host_ui, admin)
    page = open_page(admin, DOCUMENTS_PAGE)
    page.selectbox(key="documents_collection").set_value(name).run()
    page.text_input(key="retrieval-query").set_value("Which volcano sends lava into the Valle del Bove?")
    page.selectbox(key="retrieval-mode").set_value("vector")
    button(page, "Search").click().run()
    assert not page.exception
    first = next(line for line in texts(page).splitlines() if line.startswith("**#1**"))
    assert first.endswith("· etna.txt") and "score" in first
    assert any("Valle del Bove" in element.value for element in page.text)


def test_reindex_then_delete_a_document_and_delete_the_collection_only_after_confirming(
    host_ui: str, admin: SignedIn
) -> None:
    name = indexed_collection(host_ui, admin)
    before = documents_of(host_ui, name, admin)
    page = open_page(admin, DOCUMENTS_PAGE)
    page.selectbox(key="documents_collection").set_value(name).run()
    page.button(key=f"reindex-{before['etna.txt']['id']}").click().run(timeout=60)
    assert "etna.txt re-indexed." in texts(page)
    assert documents_of(host_ui, name, admin)["etna.txt"]["chunks"] == before["etna.txt"]["chunks"]

    page.button(key=f"delete-{before['etna.txt']['id']}").click().run()
    assert "etna.txt deleted." in texts(page)
    assert set(documents_of(host_ui, name, admin)) == {"penguins.md"}

    page.button(key="delete-collection").click().run()
    assert name in collection_names(host_ui, admin), "asked first"
    page.button(key="confirm-delete-collection").click().run()
    assert name not in collection_names(host_ui, admin)
    assert f"Collection {name} deleted." in texts(page)


def test_an_invalid_collection_name_is_refused_with_the_hosts_reason(host_ui: str, admin: SignedIn) -> None:
    page = open_page(admin, DOCUMENTS_PAGE)
    page.text_input(key="new-collection-name").set_value("Bad Name!")
    button(page, "Create").click().run()
    assert not page.exception
    assert any(str(e.value).startswith("Not created:") and "(422)" in str(e.value) for e in page.error)


def test_a_shared_collection_is_listed_for_others_read_only_and_the_rest_stays_private(
    host_ui: str, admin: SignedIn, someone: SignedIn
) -> None:
    shared, private = indexed_collection(host_ui, admin), indexed_collection(host_ui, admin)
    page = open_page(admin, DOCUMENTS_PAGE)
    page.selectbox(key="documents_collection").set_value(shared).run()
    page.toggle(key=f"share-{shared}").set_value(True).run()
    assert f"{shared} is shared with everyone, read-only." in texts(page)

    theirs = open_page(someone, DOCUMENTS_PAGE)
    assert not theirs.exception
    names = list(theirs.selectbox(key="documents_collection").options)
    assert shared in names and private not in names
    theirs.selectbox(key="documents_collection").set_value(shared).run()
    assert f"{shared} is shared by {admin.account.login}" in texts(theirs)
    assert not theirs.file_uploader, "no upload into someone else's collection"
    labels = {b.label for b in theirs.button}
    assert not labels & {"Delete collection", "Re-index", "Upload and index"}, labels
    table = theirs.dataframe[0].value
    assert table[table["collection"] == shared].iloc[0]["access"] == f"shared by {admin.account.login}: read-only"
    chat = open_page(someone)
    assert shared in chat.multiselect[0].options and private not in chat.multiselect[0].options


def test_a_host_that_is_down_is_explained_and_nothing_crashes(
    host_ui: str, admin: SignedIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_HOST_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    page = open_page(admin, DOCUMENTS_PAGE)
    assert not page.exception and "cannot reach the agent host" in texts(page)
    chat = open_page(admin)
    assert not chat.exception and "Document collections unavailable: cannot reach the agent host" in texts(chat)
    chat = send(chat, "Are you there?")
    assert not chat.exception and "No chat could be opened: cannot reach the agent host" in texts(chat)
    assert chat.code[-1].value == "Are you there?"  # kept on the page, to resend


# Chat with documents: the sources come from the answer's metadata on the host.


def test_an_answer_from_documents_shows_its_sources_and_keeps_them_after_a_reload(
    host_ui: str, admin: SignedIn
) -> None:
    name = indexed_collection(host_ui, admin)
    app = short_answers(open_page(admin))
    app.multiselect(key="collections-None").set_value([name]).run()
    app = send(app, PENGUIN_QUESTION)
    assert not app.exception
    labels = [expander.label for expander in app.expander]
    assert any(label.startswith("[1] penguins.md") for label in labels), labels
    session_id = conversation_of(app)
    session = call(host_ui, "GET", f"/sessions/{session_id}", admin).json()
    assert session["collections"] == [name]  # the choice lives in the session, not in the UI
    answer = stored(host_ui, session_id, admin)[-1]
    citations = answer["metadata"]["citations"]
    assert citations[0]["source"] == "penguins.md" and "egg warm" in citations[0]["text"]

    reopened = open_page(admin, c=session_id)
    assert any(e.label.startswith("[1] penguins.md") for e in reopened.expander)
    assert reopened.multiselect(key=f"collections-{session_id}").value == [name]


def test_a_question_the_documents_do_not_answer_gets_no_sources_and_says_so(host_ui: str, admin: SignedIn) -> None:
    name = indexed_collection(host_ui, admin)
    app = short_answers(open_page(admin))
    app.multiselect(key="collections-None").set_value([name]).run()
    app = send(app, "What is the boiling point of liquid nitrogen in kelvin?")
    shown = texts(app)
    assert f"Searched {name}: nothing relevant, so no sources." in shown
    assert "could not find anything relevant" in shown
    assert not [e for e in app.expander if e.label.startswith("[1]")]


def test_a_deleted_collection_is_a_readable_error_not_a_model_error(host_ui: str, admin: SignedIn) -> None:
    name = indexed_collection(host_ui, admin)
    app = short_answers(open_page(admin))
    app.multiselect(key="collections-None").set_value([name]).run()
    assert call(host_ui, "DELETE", f"/rag/collections/{name}", admin).status_code == 204
    app = send(app, PENGUIN_QUESTION)
    shown = texts(app)
    assert not app.exception
    assert "Pick the chat's collections again" in shown and "not served" not in shown
    assert f"No longer on the agent host: {name}." in shown


# One history: what is on screen is what the host stores, after an edit, a regenerate and a delete.


def test_edit_regenerate_and_delete_leave_the_hosts_history_equal_to_the_screen(host_ui: str, admin: SignedIn) -> None:
    app = short_answers(open_page(admin))
    app = send(app, "Name one colour.")
    app = send(app, "Name one animal.")
    assert not app.exception, app.exception
    session_id = conversation_of(app)

    def host_copy() -> list[tuple[str, str]]:
        return [(m["role"], m["content"]) for m in stored(host_ui, session_id, admin)]

    assert [role for role, _ in host_copy()] == ["user", "assistant", "user", "assistant"]
    assert on_screen(app) == host_copy()

    last_question = stored(host_ui, session_id, admin)[2]
    app.text_area(key=f"edit-{last_question['id']}").set_value("Name one fruit.")
    app.button(key="send-edited").click().run(timeout=120)
    assert not app.exception and app.session_state["problem"] is None
    edited = stored(host_ui, session_id, admin)
    after_edit = [(m["role"], m["content"]) for m in edited]
    assert [text for role, text in after_edit if role == "user"] == ["Name one colour.", "Name one fruit."]
    assert edited[2]["id"] == last_question["id"], "the question was replaced, not added"
    assert len(after_edit) == 4 and on_screen(app) == after_edit

    app.button(key="regenerate").click().run(timeout=120)
    assert not app.exception and app.session_state["problem"] is None
    after_regenerate = stored(host_ui, session_id, admin)
    assert [m["role"] for m in after_regenerate] == ["user", "assistant", "user", "assistant"]
    assert [m["id"] for m in after_regenerate[:3]] == [m["id"] for m in edited[:3]]
    assert after_regenerate[3]["id"] > edited[3]["id"], "a new answer in the old one's place"
    assert on_screen(app) == host_copy()

    first_answer = after_regenerate[1]
    app.button(key=f"delete-message-{first_answer['id']}").click().run()
    assert [m["id"] for m in stored(host_ui, session_id, admin)] == [
        m["id"] for m in after_regenerate if m["id"] != first_answer["id"]
    ]
    assert on_screen(app) == host_copy()

    reopened = open_page(admin, c=session_id)
    assert on_screen(reopened) == host_copy()
    with psycopg.connect(get_settings().database_url.get_secret_value()) as conn:
        kept = [conn.execute(f"SELECT count(*) FROM {table}").fetchone() for table in UI_TABLES]
    assert kept == [(0,)] * len(UI_TABLES), "the UI keeps no second copy in agent-host mode"


def test_each_person_sees_only_their_own_chats(host_ui: str, admin: SignedIn, someone: SignedIn) -> None:
    mine = short_answers(open_page(admin))
    mine = send(mine, "Say hello to the admin.")
    session_id = conversation_of(mine)
    theirs = open_page(someone)
    assert not [b for b in theirs.button if b.key == f"open-{session_id}"]
    assert call(host_ui, "GET", f"/sessions/{session_id}", someone).status_code == 404
    peeking = open_page(someone, c=session_id)
    assert not peeking.exception and "Say hello to the admin." not in texts(peeking)
    assert peeking.session_state["conversation"] is None
    peeking.text_input(key="search").set_value("hello to the admin").run()
    assert not [b for b in peeking.button if b.key == f"open-{session_id}"]
    assert [b for b in open_page(admin).button if b.key == f"open-{session_id}"]


def test_search_rename_and_delete_a_chat_go_to_the_host(host_ui: str, admin: SignedIn) -> None:
    app = send(short_answers(open_page(admin)), "Tell me about walruses.")
    session_id = conversation_of(app)
    found = open_page(admin)
    found.text_input(key="search").set_value("walruses").run()
    assert [b.key for b in found.button if b.key and b.key.startswith("open-")] == [f"open-{session_id}"]
    found.text_input(key="search").set_value("no chat says this").run()
    assert not [b for b in found.button if b.key and b.key.startswith("open-")]

    app.text_input(key=f"title-{session_id}").set_value("Walrus facts").run()
    assert call(host_ui, "GET", f"/sessions/{session_id}", admin).json()["title"] == "Walrus facts"
    app.button(key="delete-chat").click().run()
    assert call(host_ui, "GET", f"/sessions/{session_id}", admin).status_code == 200, "asked first"
    app.button(key="confirm-delete").click().run()
    assert call(host_ui, "GET", f"/sessions/{session_id}", admin).status_code == 404
    assert not app.exception and not [b for b in app.button if b.key == f"open-{session_id}"]


# Agent mode.


def test_agent_mode_shows_each_step_keeps_the_exchange_in_the_session_and_regenerates_it(
    host_ui: str, admin: SignedIn
) -> None:
    app = open_page(admin)
    app.toggle(key="agent_mode").set_value(True).run()
    assert "math" in app.selectbox(key="agent_name").options  # read from the host's GET /agents
    app.selectbox(key="agent_name").set_value("math").run()
    app = send(app, "What is 12 times 7?")
    assert not app.exception, app.exception
    labels = [expander.label for expander in app.expander]
    assert "Step 1: calculator" in labels, labels
    session_id = conversation_of(app)
    messages = stored(host_ui, session_id, admin)
    assert [(m["role"], m["content"]) for m in messages[:1]] == [("user", "What is 12 times 7?")]
    assert messages[1]["role"] == "assistant" and messages[1]["metadata"]["agent_run"]["agent"] == "math"
    assert on_screen(app) == [(m["role"], m["content"]) for m in messages]
    reopened = open_page(admin, c=session_id)
    assert "Answered by agent **math**" in texts(reopened) or "Step 1: calculator" in [
        e.label for e in reopened.expander
    ]

    app.button(key="regenerate").click().run(timeout=120)  # the run stores its question again: once, in order
    assert not app.exception and app.session_state["problem"] is None
    again = stored(host_ui, session_id, admin)
    assert [(m["role"], m["content"]) for m in again[:1]] == [("user", "What is 12 times 7?")]
    assert len(again) == 2 and again[1]["id"] > messages[1]["id"]
    assert on_screen(app) == [(m["role"], m["content"]) for m in again]


def test_agent_mode_with_the_host_gone_explains_and_keeps_the_question(
    host_ui: str, admin: SignedIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(admin)
    app.toggle(key="agent_mode").set_value(True).run()
    monkeypatch.setenv("AGENT_HOST_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    app = send(app, "What is 2 plus 2?")
    assert not app.exception
    assert "cannot reach the agent host" in texts(app)
    assert app.code[-1].value == "What is 2 plus 2?"  # kept on the page, to resend
