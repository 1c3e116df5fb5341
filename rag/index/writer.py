"""IndexWriter: the one way ingest changes an index. It writes the catalog and the vector store in the order that
makes ingestion crash-safe: (1) note the new chunk ids as pending, (2) upsert their vectors, (3) commit
documents, chunks and files to the catalog in one SQLite transaction, which takes them live, (4) delete the
vectors that commit superseded. Until (3) nothing new is visible (retrieval returns only chunks the catalog
knows); `recover` deletes what an interrupted run wrote but never took live."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from llama_index.core.schema import BaseNode

from rag.index.catalog import Catalog, DocumentWrite, FileRecord
from rag.index.store import VectorIndex

log = logging.getLogger(__name__)


class IndexWriter:
    def __init__(self, catalog: Catalog, vectors: VectorIndex) -> None:
        self.catalog = catalog
        self.vectors = vectors

    # -- what ingest reads to decide what to write -----------------------------------------------------
    def meta(self, key: str) -> str | None:
        return self.catalog.meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self.catalog.set_meta(key, value)

    def file_record(self, path: str) -> FileRecord | None:
        return self.catalog.file_record(path)

    def file_records(self) -> list[FileRecord]:
        return self.catalog.file_records()

    def doc_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        return self.catalog.doc_hashes(doc_ids)

    # -- writes --------------------------------------------------------------------------------------
    def recover(self) -> int:
        """Delete the vectors an interrupted run wrote or superseded but never took live; how many."""
        pending = self.catalog.pending_deletes()
        if not pending:
            return 0
        live = set(self.catalog.live_chunk_ids(pending))
        dead = [c for c in pending if c not in live]
        if dead:
            log.info("removing %d vectors left by an interrupted ingest", len(dead))
            self.vectors.delete(dead)
        self.catalog.clear_pending(pending)
        return len(dead)

    def write(self, documents: Sequence[DocumentWrite], nodes: Sequence[BaseNode], files: Sequence[FileRecord] = (),
              removed_doc_ids: Sequence[str] = ()) -> None:
        """Documents with their chunks, whose embedded `nodes` are the chunks' vectors, and the file records
        that list them; `removed_doc_ids` leave in the same commit."""
        self.catalog.add_pending([n.node_id for n in nodes])
        if nodes:
            self.vectors.add(nodes)
        stale = self.catalog.commit(list(documents), files=list(files), removed_doc_ids=list(removed_doc_ids))
        self._delete_vectors(stale)

    def remove(self, doc_ids: Sequence[str], files: Sequence[FileRecord] = (), removed_files: Sequence[str] = ()
               ) -> None:
        """Documents out, with their vectors; `files` rewritten and `removed_files` forgotten in the same commit."""
        stale = self.catalog.commit([], files=list(files), removed_doc_ids=list(doc_ids),
                                    removed_files=list(removed_files))
        self._delete_vectors(stale)

    def _delete_vectors(self, chunk_ids: list[str]) -> None:
        if chunk_ids:
            self.vectors.delete(chunk_ids)
            self.catalog.clear_pending(chunk_ids)
