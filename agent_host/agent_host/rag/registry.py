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
    c.owner_id::text AS owner_id, c.shared, (SELECT a.login FROM accounts a WHERE a.id = c.owner_id) AS owner_login,
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

    async def insert_document(self, document: NewDocument) -> str | None:
        """The new row's id, status 'indexing'; None when the collection already holds this content."""
        document_id = uuid.uuid4()
        async with self.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO rag_documents (id, collection, filename, type, size, sha256, pages, status, sections) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, 'indexing', %s) ON CONFLICT (collection, sha256) DO NOTHING",
                (
                    document_id,
                    document.collection,
                    document.filename,
                    document.type,
                    document.size,
                    document.sha256,
                    document.pages,
                    Jsonb(document.sections),
                ),
            )
        return str(document_id) if cursor.rowcount else None

    async def mark_ready(self, document_id: str, chunks: int) -> bool:
        """False when the document was deleted while it was being indexed."""
        async with self.connection() as conn:
            cursor = await conn.execute(
                "UPDATE rag_documents SET status = 'ready', chunks = %s WHERE id = %s AND status = 'indexing'",
                (chunks, _parse_id(document_id)),
            )
        return cursor.rowcount > 0

    async def begin_reindex(self, document_id: str) -> int | None:
        """Reserves generation + 1 for a re-index; None if the document is gone or not ready."""
        rows = await self._rows(
            "UPDATE rag_documents SET pending_generation = generation + 1 WHERE id = %s AND status = 'ready' "
            "RETURNING pending_generation",
            (_parse_id(document_id),),
        )
        return int(rows[0]["pending_generation"]) if rows else None

    async def finish_reindex(self, document_id: str, generation: int, chunks: int) -> int | None:
        """Switches the document to its new generation; the old one, or None if the document was deleted."""
        key = _parse_id(document_id)
        async with self.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT generation FROM rag_documents WHERE id = %s AND pending_generation = %s FOR UPDATE",
                (key, generation),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            await conn.execute(
                "UPDATE rag_documents SET generation = %s, chunks = %s, pending_generation = NULL WHERE id = %s",
                (generation, chunks, key),
            )
        return int(row["generation"])

    async def abort_reindex(self, document_id: str) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "UPDATE rag_documents SET pending_generation = NULL WHERE id = %s", (_parse_id(document_id),)
            )

    async def remove_document(self, document_id: str) -> None:
        async with self.connection() as conn:
            await conn.execute("DELETE FROM rag_documents WHERE id = %s", (_parse_id(document_id),))

    async def delete_document(self, collection: str, document_id: str) -> None:
        key = _parse_id(document_id, collection)
        async with self.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM rag_documents WHERE id = %s AND collection = %s", (key, collection)
            )
        if cursor.rowcount == 0:
            raise DocumentNotFound(f"document {document_id} is not in collection {collection!r}")

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

    async def ready_generations(self) -> list[tuple[str, str, int]]:
        """(collection, document id, generation) of every document queries may return."""
        rows = await self._rows(
            "SELECT collection, id::text AS id, generation FROM rag_documents WHERE status = 'ready'"
        )
        return [(row["collection"], row["id"], row["generation"]) for row in rows]

    async def leftovers(self) -> list[Leftover]:
        rows = await self._rows(
            "SELECT collection, id::text AS id, generation, pending_generation, status FROM rag_documents "
            "WHERE status = 'indexing' OR pending_generation IS NOT NULL"
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


def _parse_id(document_id: str, collection: str | None = None) -> uuid.UUID:
    try:
        return uuid.UUID(document_id)
    except ValueError:
        where = f" in collection {collection!r}" if collection else ""
        raise DocumentNotFound(f"document {document_id} does not exist{where}") from None
