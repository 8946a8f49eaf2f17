"""Collections and documents in PostgreSQL (the `genailabs` database): what exists, whose, and what is indexed.

The tables come from genailabs_accounts' migrations; who may read or change a collection is RagService's call.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from agent_host.db import PgStore
from agent_host.errors import CollectionExists, CollectionNotFound, DocumentNotFound
from agent_host.rag.schemas import CollectionPublic, DocumentPublic

COLLECTION_COLUMNS = """c.name, c.description, c.chunk_tokens, c.chunk_overlap, c.embedding_model, c.created_at,
    c.version, c.owner_id::text AS owner_id, c.shared,
    (SELECT a.login FROM accounts a WHERE a.id = c.owner_id) AS owner_login,
    (SELECT count(*) FROM rag_documents d WHERE d.collection = c.name AND d.status = 'ready') AS documents,
    (SELECT coalesce(sum(d.chunks), 0) FROM rag_documents d WHERE d.collection = c.name AND d.status = 'ready')
        AS chunks"""
DOCUMENT_COLUMNS = "id::text AS id, collection, filename, type, size, sha256, pages, chunks, status, created_at"


@dataclass(frozen=True)
class NewDocument:
    collection: str
    filename: str
    type: str
    size: int
    sha256: str
    pages: int | None
    sections: list[dict[str, Any]]


@dataclass(frozen=True)
class StoredDocument:
    public: DocumentPublic
    generation: int
    sections: list[dict[str, Any]]


@dataclass(frozen=True)
class Leftover:
    """A document a crash left half-written: a first index (no generation served yet) or a re-index."""

    collection: str
    document_id: str
    generation: int
    first_index: bool


class Registry(PgStore):
    """All RAG SQL lives here; a database outage surfaces as DatabaseUnavailable."""

    unavailable = "the RAG registry database is unreachable"

    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        async with self.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    async def create_collection(
        self, owner: uuid.UUID, name: str, description: str, chunk_tokens: int, chunk_overlap: int, embedding_model: str
    ) -> CollectionPublic:
        """Names are global (one Chroma collection each): a name anyone has taken is CollectionExists."""
        async with self.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO rag_collections (name, description, chunk_tokens, chunk_overlap, embedding_model, "
                "owner_id) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                (name, description, chunk_tokens, chunk_overlap, embedding_model, owner),
            )
        if cursor.rowcount == 0:
            raise CollectionExists(name)
        return await self.get_collection(name)

    async def get_collection(self, name: str) -> CollectionPublic:
        rows = await self._rows(f"SELECT {COLLECTION_COLUMNS} FROM rag_collections c WHERE c.name = %s", (name,))
        if not rows:
            raise CollectionNotFound(name)
        return CollectionPublic(**rows[0])

    async def list_collections(self, reader: uuid.UUID | None = None) -> list[CollectionPublic]:
        """Every collection, or only those `reader` may read: their own and the shared ones."""
        where = "" if reader is None else "WHERE c.owner_id = %s OR c.shared "
        rows = await self._rows(
            f"SELECT {COLLECTION_COLUMNS} FROM rag_collections c {where}ORDER BY c.name", (reader,) if reader else ()
        )
        return [CollectionPublic(**row) for row in rows]

    async def set_shared(self, name: str, shared: bool) -> CollectionPublic:
        async with self.connection() as conn:
            cursor = await conn.execute("UPDATE rag_collections SET shared = %s WHERE name = %s", (shared, name))
        if cursor.rowcount == 0:
            raise CollectionNotFound(name)
        return await self.get_collection(name)

    async def delete_collection(self, name: str) -> None:
        async with self.connection() as conn:
            cursor = await conn.execute("DELETE FROM rag_collections WHERE name = %s", (name,))
        if cursor.rowcount == 0:
            raise CollectionNotFound(name)

    async def find_by_hash(self, collection: str, sha256: str) -> str | None:
        rows = await self._rows(
            "SELECT id::text AS id FROM rag_documents WHERE collection = %s AND sha256 = %s", (collection, sha256)
        )
        return str(rows[0]["id"]) if rows else None

    async def insert_document(self, document: NewDocument, job_id: str) -> str | None:
        """The new row's id, status 'indexing' for `job_id`; None when the collection already holds this content."""
        document_id = uuid.uuid4()
        async with self.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO rag_documents (id, collection, filename, type, size, sha256, pages, status, sections, "
                "job_id) VALUES (%s, %s, %s, %s, %s, %s, %s, 'indexing', %s, %s) "
                "ON CONFLICT (collection, sha256) DO NOTHING",
                (
                    document_id,
                    document.collection,
                    document.filename,
                    document.type,
                    document.size,
                    document.sha256,
                    document.pages,
                    Jsonb(document.sections),
                    uuid.UUID(job_id),
                ),
            )
        return str(document_id) if cursor.rowcount else None

    async def finalise(self, collection: str, document_id: str, chunks: int) -> bool:
        """Makes a first index visible; False when the document was deleted while it was being indexed."""
        async with self.connection() as conn, conn.transaction():
            await _lock_collection(conn, collection)
            cursor = await conn.execute(
                "UPDATE rag_documents SET status = 'ready', chunks = %s, job_id = NULL "
                "WHERE id = %s AND status = 'indexing'",
                (chunks, _parse_id(document_id)),
            )
            if cursor.rowcount == 0:
                return False
            await _bump(conn, collection)
        return True

    async def begin_reindex(self, document_id: str, job_id: str) -> int | None:
        """Reserves generation + 1 for a re-index by `job_id`; None if the document is gone or not ready."""
        rows = await self._rows(
            "UPDATE rag_documents SET pending_generation = generation + 1, job_id = %s "
            "WHERE id = %s AND status = 'ready' RETURNING pending_generation",
            (uuid.UUID(job_id), _parse_id(document_id)),
        )
        return int(rows[0]["pending_generation"]) if rows else None

    async def finish_reindex(self, collection: str, document_id: str, generation: int, chunks: int) -> int | None:
        """Switches the document to its new generation; the old one, or None if the document was deleted."""
        key = _parse_id(document_id)
        async with self.connection() as conn, conn.transaction():
            await _lock_collection(conn, collection)
            cursor = await conn.execute(
                "SELECT generation FROM rag_documents WHERE id = %s AND pending_generation = %s FOR UPDATE",
                (key, generation),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            await conn.execute(
                "UPDATE rag_documents SET generation = %s, chunks = %s, pending_generation = NULL, job_id = NULL "
                "WHERE id = %s",
                (generation, chunks, key),
            )
            await _bump(conn, collection)
        return int(row["generation"])

    async def abort_reindex(self, document_id: str) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "UPDATE rag_documents SET pending_generation = NULL, job_id = NULL WHERE id = %s",
                (_parse_id(document_id),),
            )

    async def remove_document(self, document_id: str) -> None:
        """Removes a first index that failed (never visible, so the collection's version stays)."""
        async with self.connection() as conn:
            await conn.execute(
                "DELETE FROM rag_documents WHERE id = %s AND status = 'indexing'", (_parse_id(document_id),)
            )

    async def delete_document(self, collection: str, document_id: str) -> None:
        """Deletes the row under the collection's lock, so it is ordered against a finalise of the same document."""
        key = _parse_id(document_id, collection)
        async with self.connection() as conn, conn.transaction():
            await _lock_collection(conn, collection)
            cursor = await conn.execute(
                "DELETE FROM rag_documents WHERE id = %s AND collection = %s", (key, collection)
            )
            if cursor.rowcount == 0:
                raise DocumentNotFound(f"document {document_id} is not in collection {collection!r}")
            await _bump(conn, collection)

    async def get_document(self, collection: str, document_id: str) -> StoredDocument:
        rows = await self._rows(
            f"SELECT {DOCUMENT_COLUMNS}, generation, sections FROM rag_documents WHERE id = %s AND collection = %s",
            (_parse_id(document_id, collection), collection),
        )
        if not rows:
            raise DocumentNotFound(f"document {document_id} is not in collection {collection!r}")
        row = rows[0]
        generation, sections = row.pop("generation"), row.pop("sections")
        return StoredDocument(public=DocumentPublic(**row), generation=generation, sections=sections)

    async def list_documents(self, collection: str) -> list[DocumentPublic]:
        await self.get_collection(collection)
        rows = await self._rows(
            f"SELECT {DOCUMENT_COLUMNS} FROM rag_documents WHERE collection = %s ORDER BY created_at, filename",
            (collection,),
        )
        return [DocumentPublic(**row) for row in rows]

    async def ready_state(self, collection: str) -> tuple[int, frozenset[tuple[str, int]]]:
        """The collection's version and its ready (document id, generation) pairs, read in one snapshot."""
        rows = await self._rows(
            "SELECT c.version, d.id::text AS id, d.generation FROM rag_collections c LEFT JOIN rag_documents d "
            "ON d.collection = c.name AND d.status = 'ready' WHERE c.name = %s",
            (collection,),
        )
        if not rows:
            raise CollectionNotFound(collection)
        pairs = frozenset((row["id"], row["generation"]) for row in rows if row["id"] is not None)
        return int(rows[0]["version"]), pairs

    async def leftovers(self) -> list[Leftover]:
        """Documents half-written by a job that has ended, or by a host whose accepting lease ran out.

        A document whose job is still open belongs to the queue (a stalled worker's job is retried), never to
        whoever happens to start or sweep now.
        """
        rows = await self._rows(
            "SELECT d.collection, d.id::text AS id, d.generation, d.pending_generation, d.status "
            "FROM rag_documents d LEFT JOIN rag_jobs j ON j.id = d.job_id "
            "WHERE (d.status = 'indexing' OR d.pending_generation IS NOT NULL) AND (j.id IS NULL "
            "OR j.status IN ('done', 'failed') OR (j.status = 'accepting' AND j.lease_until < now()))"
        )
        return [
            Leftover(
                collection=row["collection"],
                document_id=row["id"],
                generation=row["generation"] if row["status"] == "indexing" else row["pending_generation"],
                first_index=row["status"] == "indexing",
            )
            for row in rows
        ]


async def _lock_collection(conn: Any, collection: str) -> None:
    """Row lock on the collection: finalises, re-index switches and deletes in it happen one at a time."""
    await conn.execute("SELECT 1 FROM rag_collections WHERE name = %s FOR UPDATE", (collection,))


async def _bump(conn: Any, collection: str) -> None:
    await conn.execute(
        "UPDATE rag_collections SET version = nextval('rag_collection_versions') WHERE name = %s", (collection,)
    )


def _parse_id(document_id: str, collection: str | None = None) -> uuid.UUID:
    try:
        return uuid.UUID(document_id)
    except ValueError:
        where = f" in collection {collection!r}" if collection else ""
        raise DocumentNotFound(f"document {document_id} does not exist{where}") from None
