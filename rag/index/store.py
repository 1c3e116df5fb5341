"""The one place that talks to chromadb: a persistent client in the index dir, or an HTTP client to a server."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from rag.errors import BackendError, IndexMismatchError, RagError, open_retrying_locks, storage_error

if TYPE_CHECKING:
    from llama_index.core.schema import BaseNode

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"
_BATCH = 1000
# The chunk metadata Chroma keeps: what `rag.types.Filters.chroma_where` filters on, and the document. The catalog
# keeps the rest (title, offsets, text); LlamaIndex's whole node as JSON beside each vector made each write slower.
FILTER_KEYS = ("doc_id", "source", "published_day")


def _upsert_store(collection: Any) -> Any:
    """A LlamaIndex ChromaVectorStore whose add() upserts, so re-adding a chunk id refreshes it instead of being
    ignored. Made on first write: answering never imports LlamaIndex."""
    from llama_index.vector_stores.chroma import ChromaVectorStore

    class UpsertChromaVectorStore(ChromaVectorStore):
        def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
            ids: list[str] = []
            for i in range(0, len(nodes), _BATCH):
                batch = nodes[i : i + _BATCH]
                metadatas = [{k: ("" if node.metadata.get(k) is None else node.metadata[k]) for k in FILTER_KEYS}
                             for node in batch]
                # chromadb's stubs want numpy arrays and its own metadata mapping type; plain lists work. No
                # `documents`: the catalog keeps the text (and its own keyword index), and Chroma indexing the text
                # again for its full-text search doubled the time of each write.
                self._collection.upsert(
                    ids=[n.node_id for n in batch],
                    embeddings=[n.get_embedding() for n in batch],  # type: ignore[arg-type]
                    metadatas=metadatas,  # type: ignore[arg-type]
                )
                ids.extend(n.node_id for n in batch)
            return ids

    return UpsertChromaVectorStore(chroma_collection=collection)  # type: ignore[call-arg]


def _http_session(client: Any) -> Any:
    """The httpx client behind a chromadb HttpClient (a private attribute), or None for an embedded client."""
    return getattr(getattr(client, "_server", None), "_session", None)


def _client(index_dir: Path, chroma_url: str, timeout_s: float = 30.0) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        url = urlparse(chroma_url)
        try:
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
            # chromadb's HTTP session waits forever (timeout=None, no setting for it): a server that hangs
            # would hang every question. Its httpx client takes a timeout; chromadb keeps it on a private attribute.
            session = _http_session(client)
            if session is not None:
                import httpx

                session.timeout = httpx.Timeout(timeout_s)
            client.heartbeat()
        except Exception as exc:
            raise BackendError(f"the Chroma server at {chroma_url} is unreachable: {exc}") from exc
        return client
    def open_once() -> Any:
        index_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(index_dir / "chroma"), settings=chroma_settings)

    def forget_half_started() -> None:  # chromadb caches a client system by path, even one whose start failed
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(str(index_dir / "chroma"), None)

    # chromadb wraps sqlite and OS errors in its own types: any error is a storage error here.
    return open_retrying_locks(open_once, f"opening the vector store in {index_dir / 'chroma'}", index_dir,
                               reset=forget_half_started)


class VectorIndex:
    """Chunk vectors in one Chroma collection, tagged with the embedding model that made them."""

    def __init__(self, index_dir: Path, collection: str, embed_model_id: str, chroma_url: str = "",
                 timeout_s: float = 30.0) -> None:
        self.chroma_url = chroma_url
        self.index_dir = index_dir
        self._client = _client(index_dir, chroma_url, timeout_s)
        try:
            self._collection = self._client.get_or_create_collection(
                collection,
                metadata={"hnsw:space": "cosine", "embed_model": embed_model_id, "format": FORMAT_VERSION},
            )
        except Exception as exc:
            raise BackendError(f"Chroma collection {collection!r} could not be opened: {exc}") from exc
        meta = self._collection.metadata or {}
        if meta.get("embed_model") not in (None, embed_model_id) or meta.get("format") not in (None, FORMAT_VERSION):
            raise IndexMismatchError(
                f"the index holds vectors of model {meta.get('embed_model')!r} (format {meta.get('format')}), "
                f"but {embed_model_id!r} (format {FORMAT_VERSION}) is configured: re-ingest into a new index "
                "directory, or configure the model the index was built with"
            )
        self._vector_store: Any = None

    @property
    def vector_store(self) -> Any:
        """The LlamaIndex vector store over the collection (for writes)."""
        if self._vector_store is None:
            self._vector_store = _upsert_store(self._collection)
        return self._vector_store

    def close(self) -> None:
        """Release the client (its HTTP connections, or the embedded store's share of its files)."""
        session = _http_session(self._client)
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
        # chromadb stops a client's system with its last user but never closes the HTTP session's sockets; close
        # them when no other client in this process shares the system.
        if session is not None:
            from chromadb.api.shared_system_client import SharedSystemClient

            if getattr(self._client, "_identifier", None) not in SharedSystemClient._identifier_to_system:
                session.close()

    def count(self) -> int:
        return int(self._collection.count())

    def add(self, nodes: Sequence[BaseNode]) -> None:
        try:
            self.vector_store.add(list(nodes))
        except Exception as exc:
            raise self._failure("writing vectors", exc) from exc

    def delete(self, chunk_ids: Sequence[str]) -> None:
        ids = list(chunk_ids)
        try:
            for i in range(0, len(ids), _BATCH):
                self.vector_store.delete_nodes(node_ids=ids[i : i + _BATCH])
        except Exception as exc:
            raise self._failure("deleting vectors", exc) from exc

    def _failure(self, what: str, exc: Exception) -> RagError:
        """A failed Chroma call as the error to raise: the server's (BackendError) or the index directory's."""
        if self.chroma_url:
            return BackendError(f"{what} in the Chroma server at {self.chroma_url} failed: {exc}")
        return storage_error(f"{what} in Chroma ({self.index_dir / 'chroma'})", self.index_dir, exc)

    def all_ids(self) -> list[str]:
        return list(self._collection.get(include=[])["ids"])

    def query(
        self, embedding: Sequence[float], top_k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity) of the nearest chunks, best first."""
        if top_k <= 0:
            return []
        try:
            result = self._collection.query(
                query_embeddings=[list(embedding)], n_results=top_k, where=where or None, include=["distances"]
            )
        except Exception as exc:
            raise self._failure("querying vectors", exc) from exc
        ids = result["ids"][0]
        distances = result["distances"][0] if result.get("distances") else [1.0] * len(ids)
        return [(chunk_id, 1.0 - float(d)) for chunk_id, d in zip(ids, distances, strict=False)]
