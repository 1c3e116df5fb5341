"""Files -> articles -> chunks -> vectors in Chroma, committed to the catalog one batch at a time.

LlamaIndex's IngestionPipeline runs the transformations (our sentence-aware chunker, then the embedding
model). The write protocol around it is ours, because the order of writes is what makes ingestion
crash-safe: (1) note the new chunk ids as pending, (2) upsert vectors into Chroma, (3) commit documents,
chunks and files to the catalog in one SQLite transaction, (4) delete the superseded vectors. Until (3)
nothing new is visible (retrieval only returns chunks the catalog knows), and an interrupted run is
cleaned up (pending ids that never went live are deleted) and completed by the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import BaseNode, Document, NodeRelationship, RelatedNodeInfo, TextNode, TransformComponent
from pydantic import PrivateAttr

from ingest.chunk import Chunker
from ingest.clean import clean_html, clean_markdown, clean_text
from ingest.load import RawRecord, SourceFile, discover, read_records
from rag.catalog import Catalog, DocumentWrite, FileRecord
from rag.errors import IndexLockedError, IngestError
from rag.store import VectorIndex
from rag.types import Article, Chunk, IngestReport, SkippedFile, published_day

log = logging.getLogger(__name__)

CLEANER_VERSION = "1"  # bump when cleaning changes, so unchanged files are re-read
_META_KEYS = ("doc_id", "title", "source", "published", "published_day", "chunk_index", "doc_hash")


def to_article(record: RawRecord) -> Article:
    """Dispatch a raw record to the cleaner for its format."""
    if record.format == "html":
        return clean_html(record.text, doc_id=record.doc_id, path=record.path)
    if record.format == "md":
        return clean_markdown(record.text, doc_id=record.doc_id, path=record.path)
    meta = record.meta
    return clean_text(
        record.text,
        doc_id=record.doc_id,
        path=record.path,
        title=str(meta.get("title", "")),
        source=str(meta.get("source", "")),
        published=str(meta.get("published", "")),
        url=str(meta.get("url", "")),
        authors=tuple(meta.get("authors", ())),
        find_title=not meta.get("title") and record.format != "jsonl",
    )


def article_hash(article: Article, fingerprint: str) -> str:
    payload = json.dumps(
        [fingerprint, article.text, article.title, article.source, article.published, article.url,
         list(article.authors), list(article.comments), article.path],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ChunkTransform(TransformComponent):
    """LlamaIndex transform: article Documents -> chunk TextNodes with exact offsets in metadata.

    Only the title is added to the text that gets embedded; the node text is the exact article span."""

    max_tokens: int = 160
    overlap_sentences: int = 1
    _chunker: Chunker = PrivateAttr()

    def __init__(self, max_tokens: int = 160, overlap_sentences: int = 1, **kwargs: Any) -> None:
        super().__init__(max_tokens=max_tokens, overlap_sentences=overlap_sentences, **kwargs)  # type: ignore[call-arg]
        self._chunker = Chunker(max_tokens=max_tokens, overlap_sentences=overlap_sentences)

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        out: list[BaseNode] = []
        for doc in nodes:
            meta = doc.metadata
            article = Article(id=doc.id_, text=doc.get_content())
            for chunk in self._chunker.run(article):
                out.append(
                    TextNode(
                        id_=chunk.id,
                        text=chunk.text,
                        start_char_idx=chunk.start_char,
                        end_char_idx=chunk.end_char,
                        metadata={**meta, "chunk_index": chunk.index},
                        excluded_embed_metadata_keys=[k for k in _META_KEYS if k != "title"],
                        excluded_llm_metadata_keys=list(_META_KEYS),
                        metadata_template="{value}",
                        text_template="{metadata_str}\n{content}",
                        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc.id_)},
                    )
                )
        return out


@dataclass
class _Batch:
    writes: list[tuple[Article, str, bool]] = field(default_factory=list)  # article, hash, is_update
    files: list[FileRecord] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    chars: int = 0

    def __bool__(self) -> bool:
        return bool(self.writes or self.files or self.removed)


class IndexLock:
    """An exclusive, non-blocking lock on the index for writers (released by the OS if the process dies)."""

    def __init__(self, index_dir: Path) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self.path = index_dir / "ingest.lock"
        self._fd: int | None = None

    def __enter__(self) -> IndexLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise IndexLockedError(
                f"another ingest (pid {holder}) is writing to this index; wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Ingestor:
    """Brings an index in line with a set of files: adds, replaces, skips unchanged, optionally syncs deletions."""

    def __init__(
        self,
        index_dir: Path,
        catalog: Catalog,
        vectors: VectorIndex,
        embed_model: Any,
        chunk_max_tokens: int = 160,
        chunk_overlap_sentences: int = 1,
        max_file_bytes: int = 50 * 1024 * 1024,
        batch_chars: int = 400_000,
    ) -> None:
        self.index_dir = index_dir
        self.catalog = catalog
        self.vectors = vectors
        self.max_file_bytes = max_file_bytes
        self.batch_chars = batch_chars
        self.fingerprint = json.dumps(
            {"cleaner": CLEANER_VERSION, "max_tokens": chunk_max_tokens, "overlap": chunk_overlap_sentences,
             "embed": getattr(embed_model, "model_name", "")},
            sort_keys=True,
        )
        self.pipeline = IngestionPipeline(
            transformations=[ChunkTransform(chunk_max_tokens, chunk_overlap_sentences), embed_model],
            disable_cache=True,
        )

    def run(self, paths: Iterable[str | os.PathLike[str]], sync: bool = False, progress: bool | None = None,
            on_file: Callable[[int, int], None] | None = None) -> IngestReport:
        """`on_file(done, total)` is called after each file is read (for a progress display)."""
        started = time.perf_counter()
        report = IngestReport()
        with IndexLock(self.index_dir):
            self._recover()
            files, skipped = discover(paths)
            report.skipped.extend(skipped)
            same_pipeline = self.catalog.meta("pipeline") == self.fingerprint
            batch = _Batch()
            bar = _progress(files, progress)
            try:
                for done, source in enumerate(bar, 1):
                    self._add_file(source, batch, report, same_pipeline)
                    if batch.chars >= self.batch_chars:
                        self._flush(batch, report)
                        batch = _Batch()
                        bar.set_postfix(chunks=report.chunks, refresh=False)
                    if on_file is not None:
                        on_file(done, len(files))
                self._flush(batch, report)
            finally:
                bar.close()
            if sync:
                self._sync(report)
            self.catalog.set_meta("pipeline", self.fingerprint)
        report.seconds = time.perf_counter() - started
        return report

    # -- steps ---------------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Delete vectors an interrupted run wrote or superseded but never took live."""
        pending = self.catalog.pending_deletes()
        if not pending:
            return
        live = set(self.catalog.live_chunk_ids(pending))
        dead = [c for c in pending if c not in live]
        if dead:
            log.info("removing %d vectors left by an interrupted ingest", len(dead))
            self.vectors.delete(dead)
        self.catalog.clear_pending(pending)

    def _add_file(self, source: SourceFile, batch: _Batch, report: IngestReport, same_pipeline: bool) -> None:
        record = self.catalog.file_record(source.key)
        if same_pipeline and record and record.mtime_ns == source.mtime_ns and record.size == source.size:
            report.unchanged += len(record.doc_ids)
            return
        articles: dict[str, Article] = {}
        try:
            for item in read_records(source, self.max_file_bytes):
                if isinstance(item, SkippedFile):
                    report.skipped.append(item)
                    continue
                try:
                    articles[item.doc_id] = to_article(item)
                except IngestError as exc:
                    report.skipped.append(SkippedFile(item.path, str(exc)))
        except IngestError as exc:
            report.skipped.append(SkippedFile(str(source.path), str(exc)))
            return
        known = self.catalog.doc_hashes(articles)
        for article in articles.values():
            digest = article_hash(article, self.fingerprint)
            if known.get(article.id) == digest:
                report.unchanged += 1
                continue
            batch.writes.append((article, digest, article.id in known))
            batch.chars += len(article.text)
        previous = set(record.doc_ids) if record else set()
        batch.removed.extend(sorted(previous - set(articles)))
        batch.files.append(FileRecord(source.key, source.mtime_ns, source.size, tuple(articles)))

    def _flush(self, batch: _Batch, report: IngestReport) -> None:
        if not batch:
            return
        documents = [
            Document(
                id_=a.id,
                text=a.text,
                metadata={"doc_id": a.id, "title": a.title, "source": a.source, "published": a.published,
                          "published_day": published_day(a.published), "doc_hash": digest},
            )
            for a, digest, _ in batch.writes
        ]
        nodes = self.pipeline.run(documents=documents, show_progress=False) if documents else []
        chunks: dict[str, list[Chunk]] = {a.id: [] for a, _, _ in batch.writes}
        for node in nodes:
            assert isinstance(node, TextNode) and node.start_char_idx is not None and node.end_char_idx is not None
            doc_id = node.metadata["doc_id"]
            chunks[doc_id].append(
                Chunk(node.node_id, doc_id, node.text, node.start_char_idx, node.end_char_idx,
                      int(node.metadata["chunk_index"]))
            )
        new_ids = [n.node_id for n in nodes]
        self.catalog.add_pending(new_ids)
        if nodes:
            self.vectors.add(nodes)
        stale = self.catalog.commit(
            [DocumentWrite(a, digest, chunks[a.id]) for a, digest, _ in batch.writes],
            files=batch.files,
            removed_doc_ids=batch.removed,
        )
        self._delete_vectors(stale)
        for _, _, is_update in batch.writes:
            if is_update:
                report.updated += 1
            else:
                report.added += 1
        report.removed += len(batch.removed)
        report.chunks += len(nodes)
        report.embedded += len(nodes)

    def _delete_vectors(self, chunk_ids: list[str]) -> None:
        if chunk_ids:
            self.vectors.delete(chunk_ids)
            self.catalog.clear_pending(chunk_ids)

    def _sync(self, report: IngestReport) -> None:
        gone = [r for r in self.catalog.file_records() if not Path(r.path).exists()]
        if not gone:
            return
        doc_ids = sorted({d for r in gone for d in r.doc_ids})
        stale = self.catalog.commit([], removed_doc_ids=doc_ids, removed_files=[r.path for r in gone])
        self._delete_vectors(stale)
        report.removed += len(doc_ids)

    def remove_documents(self, doc_ids: Sequence[str]) -> int:
        """Delete documents by id (their source files stay as they are). Returns how many existed."""
        with IndexLock(self.index_dir):
            existing = [d for d in doc_ids if self.catalog.doc_hashes([d])]
            files = [r for r in self.catalog.file_records() if set(r.doc_ids) & set(existing)]
            rewritten = [
                FileRecord(r.path, r.mtime_ns, r.size, tuple(d for d in r.doc_ids if d not in existing))
                for r in files
            ]
            stale = self.catalog.commit([], files=rewritten, removed_doc_ids=existing)
            self._delete_vectors(stale)
        return len(existing)


def _progress(files: list[SourceFile], enabled: bool | None) -> Any:
    from tqdm import tqdm

    return tqdm(files, desc="ingest", unit="file", disable=(not sys.stderr.isatty()) if enabled is None else not enabled,
                file=sys.stderr, dynamic_ncols=True)
