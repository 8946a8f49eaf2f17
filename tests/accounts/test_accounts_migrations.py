"""The genailabs migrations: idempotent, safe when two processes start at once, and an upgrade keeps every row."""

import threading
import uuid
from typing import Any

import psycopg
from accounts_support import FAST_HASHER, POLICY
from psycopg.rows import dict_row

from genailabs_accounts.migrations import amigrate, migrate, migrations
from genailabs_accounts.store import AccountStore
from procs import PostgresInstance

VERSIONS = [migration.version for migration in migrations()]


def _tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


def test_migrate_applies_each_migration_once(accounts_url: str) -> None:
    with psycopg.connect(accounts_url, autocommit=True) as conn:
        assert migrate(conn) == VERSIONS
        assert migrate(conn) == []
        ledger = conn.execute("SELECT version, name FROM genailabs_migrations ORDER BY version").fetchall()
    assert ledger == [(1, "baseline"), (2, "accounts"), (3, "rag_jobs"), (4, "mcp_servers"), (5, "rag_job_worker")]
    assert VERSIONS == [1, 2, 3, 4, 5]


def test_migrate_creates_every_table_the_services_use(accounts_url: str) -> None:
    with psycopg.connect(accounts_url, autocommit=True) as conn:
        migrate(conn)
        tables = _tables(conn)
    assert tables >= {
        "agent_sessions", "agent_messages", "agent_notes", "rag_collections", "rag_documents", "ui_conversations",
        "ui_messages", "ui_answer_extras", "ui_conversation_collections", "accounts", "account_sessions",
        "account_api_keys", "login_attempts", "genailabs_migrations", "rag_jobs", "rag_job_files", "mcp_servers",
        "mcp_server_imports",
    }  # fmt: skip


def test_two_processes_migrating_at_once_both_succeed(accounts_url: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run() -> None:
        try:
            with psycopg.connect(accounts_url, autocommit=True) as conn:
                start.wait()
                results.append(migrate(conn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results, key=len) == [[], [], VERSIONS]


async def test_amigrate_on_an_async_connection_is_the_same_ledger(accounts_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(accounts_url, autocommit=True) as conn:
        assert await amigrate(conn) == VERSIONS
        assert await amigrate(conn) == []
    with psycopg.connect(accounts_url, autocommit=True) as sync:
        assert migrate(sync) == []


def test_migrate_inside_a_caller_transaction_commits_with_it(accounts_url: str) -> None:
    with psycopg.connect(accounts_url) as conn:  # not autocommit: the caller's transaction holds the migration
        migrate(conn)
        conn.commit()
    with psycopg.connect(accounts_url, autocommit=True) as conn:
        assert "accounts" in _tables(conn)


def _old_database(postgres: PostgresInstance) -> str:
    """A genailabs database as the stores left it before migrations existed, with one row in every table."""
    url = postgres.new_database("accounts_old")
    session_id, document_id = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(migrations()[0].sql)  # 0001_baseline.sql is, verbatim, the DDL the stores ran at connect
        conn.execute("INSERT INTO agent_sessions (id, title, collections) VALUES (%s, 'old chat', '{docs}')",
                     (session_id,))  # fmt: skip
        conn.execute("INSERT INTO agent_messages (session_id, role, content, tokens) VALUES (%s, 'user', 'hi', 1)",
                     (session_id,))  # fmt: skip
        conn.execute("INSERT INTO agent_notes (session_id, text) VALUES (%s, 'a note')", (session_id,))
        conn.execute("INSERT INTO rag_collections (name, chunk_tokens, chunk_overlap, embedding_model) "
                     "VALUES ('docs', 200, 20, 'e5')")  # fmt: skip
        conn.execute("INSERT INTO rag_documents (id, collection, filename, type, size, sha256, status, sections) "
                     "VALUES (%s, 'docs', 'a.txt', 'txt', 1, 'abc', 'ready', '[]')", (document_id,))  # fmt: skip
        conn.execute("INSERT INTO ui_conversations (title, model, temperature, max_tokens, top_p) "
                     "VALUES ('old ui chat', 'm', 0.7, 256, 1.0)")  # fmt: skip
        conn.execute("INSERT INTO ui_messages (conversation_id, role, content) "
                     "SELECT id, 'user', 'hello' FROM ui_conversations")  # fmt: skip
        conn.execute("INSERT INTO ui_answer_extras (message_id, extras) SELECT id, '{}' FROM ui_messages")
        conn.execute("INSERT INTO ui_conversation_collections (conversation_id, collections) "
                     "SELECT id, '{docs}' FROM ui_conversations")  # fmt: skip
    return url


def _snapshot(conn: psycopg.Connection[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def test_upgrade_keeps_every_row_and_the_first_admin_owns_them(postgres: PostgresInstance) -> None:
    url = _old_database(postgres)
    tables = ["agent_sessions", "agent_messages", "agent_notes", "rag_collections", "rag_documents",
              "ui_conversations", "ui_messages", "ui_answer_extras", "ui_conversation_collections"]  # fmt: skip
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        before = {table: _snapshot(conn, table) for table in tables}
    store = AccountStore(url, postgres.url("litellm"), POLICY, hasher=FAST_HASHER)
    try:
        admin, password = store.ensure_first_admin(f"admin-{uuid.uuid4().hex[:6]}")
        assert password is not None
        second = store.create_account(f"admin2-{uuid.uuid4().hex[:6]}", "another-password", role="admin")
    finally:
        store.close()
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        for table, rows in before.items():  # every old row, every old column unchanged (new columns aside)
            after = _snapshot(conn, table)
            assert len(after) == len(rows) == 1, table
            assert [{key: row[key] for key in old} for row, old in zip(after, rows, strict=True)] == rows
        for table in ("agent_sessions", "rag_collections", "ui_conversations"):
            owners = {row["owner_id"] for row in conn.execute(f"SELECT owner_id::text FROM {table}").fetchall()}
            assert owners == {admin.id}, table
        assert second.id != admin.id
        shared = conn.execute("SELECT shared FROM rag_collections").fetchone()
        metadata = conn.execute("SELECT metadata FROM agent_messages").fetchone()
    assert shared == {"shared": False}
    assert metadata == {"metadata": {}}


def test_rows_written_by_older_services_are_adopted_at_the_next_start(store: AccountStore, db: Any) -> None:
    admin, _ = store.ensure_first_admin(f"admin-{uuid.uuid4().hex[:6]}")
    db.execute("INSERT INTO agent_sessions (id, title) VALUES (%s, 'late')", (uuid.uuid4(),))
    again, password = store.ensure_first_admin("someone-else")
    assert (again.id, password) == (admin.id, None)
    owners = db.execute("SELECT DISTINCT owner_id::text AS owner FROM agent_sessions").fetchall()
    assert owners == [{"owner": admin.id}]
