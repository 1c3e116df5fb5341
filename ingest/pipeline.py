"""Files -> articles -> chunks -> vectors in Chroma, committed to the catalog one batch at a time.

LlamaIndex's IngestionPipeline runs the transformations (our sentence-aware chunker, then the embedding
model). Every write goes through rag.index.writer.IndexWriter, whose order of writes is what makes ingestion
crash-safe (its docstring says how); an interrupted run is cleaned up (`IndexWriter.recover`) and completed by
the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import BaseNode, Document, NodeRelationship, RelatedNodeInfo, TextNode, TransformComponent
from pydantic import PrivateAttr

from ingest.chunk import Chunker
from ingest.clean import clean_html, clean_markdown, clean_text
from ingest.fetch import Fetcher, FetchPolicy
from ingest.load import Columns, RawRecord, SourceFile, discover, read_records
from ingest.web import Kept, Validator, WebSource, is_url, read_url
from rag.errors import IndexLockedError, IndexStorageError, IngestError, storage_error
from rag.index.catalog import DocumentWrite, FileRecord
from rag.index.embed import TextEncoder
from rag.index.leads import LEAD_CHARS, encode_leads
from rag.index.writer import IndexWriter
from rag.types import Article, Chunk, IngestReport, SkippedFile, published_day

# Bump when cleaning changes, so unchanged files are re-read. 2: dates from URLs, pages and datelines. 3: photo
# galleries unrolled, photo credits and newsletter promos dropped, sentences no longer cut after "v.", "Reps.",
# "Sens." or "H.W.", a paragraph's dateline its own span (chunks). 4: labelled links to other stories ("More:…")
# and reporters' contact and contributor lines dropped. 5: CNN's video player text and list bullets' glyphs dropped.
# 6: a contact line needs an address or a handle; "Follow <reporter> on Twitter" lines dropped.
CLEANER_VERSION = "6"
_META_KEYS = ("doc_id", "title", "source", "published", "published_day", "chunk_index", "doc_hash")


def to_article(record: RawRecord) -> Article:
    """Dispatch a raw record to the cleaner for its format."""
    if record.format == "html":
        return clean_html(record.text, doc_id=record.doc_id, path=record.path, url=str(record.meta.get("url", "")),
                          fallback=record.meta)
    if record.format == "md":
        return clean_markdown(record.text, doc_id=record.doc_id, path=record.path)
    meta = record.meta
    return clean_text(
        record.text,
        doc_id=record.doc_id,
        path=record.path,
        title=str(meta.get("title", "")),
        source=str(meta.get("source", "")),
        published=meta.get("published", ""),
        url=str(meta.get("url", "")),
        authors=tuple(meta.get("authors", ())),
        find_title=not meta.get("title") and record.format != "jsonl",
    )


def article_hash(article: Article, fingerprint: str) -> str:
    payload = json.dumps(
        [fingerprint, article.text, article.title, article.source, article.published, article.published_source,
         article.url,
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


class _Committer:
    """Runs each batch's commit on one writer thread, in order, with at most one in flight: the next batch is
    embedded while the last one is written. A failed commit raises from the next `submit` or from `finish`.

    The catalog reads ingest makes meanwhile (a file's record, an article's hash) may miss the commit in flight
    and see the one before; they give the same decisions, because a run reads each file and each document id
    once, and a provisional file record only lists documents the file's final record lists too."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-commit")
        self._pending: Future[None] | None = None

    def submit(self, commit: Callable[[], None]) -> None:
        self.finish()
        self._pending = self._pool.submit(commit)

    def finish(self) -> None:
        """Wait for the commit in flight; its error, if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the commit in flight without raising (an error is already on its way), and stop the thread."""
        self._pool.shutdown(wait=True)


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
        index: IndexWriter,
        embed_model: Any,
        chunk_max_tokens: int = 160,
        chunk_overlap_sentences: int = 1,
        max_file_bytes: int = 50 * 1024 * 1024,
        max_article_chars: int = 1_000_000,
        batch_chars: int = 400_000,
        min_free_bytes: int = 64 * 1024 * 1024,
        fetch_policy: FetchPolicy | None = None,
        columns: Columns | None = None,
        lead_encoder: TextEncoder | None = None,
    ) -> None:
        self.index_dir = index_dir
        self.lead_encoder = lead_encoder  # each article's lead vector (rag/index/leads.py), when the index keeps them
        self.fetch_policy = fetch_policy or FetchPolicy()
        self.columns = columns or Columns()
        self._fetcher: Fetcher | None = None
        self.index = index
        self.max_file_bytes = max_file_bytes
        self.max_article_chars = max_article_chars
        self.batch_chars = batch_chars
        self.min_free_bytes = min_free_bytes
        recipe = {"cleaner": CLEANER_VERSION, "max_tokens": chunk_max_tokens, "overlap": chunk_overlap_sentences,
                  "embed": getattr(embed_model, "model_name", "")}
        if lead_encoder is not None:  # only then: an index without lead vectors keeps its fingerprint
            recipe["leads"] = f"{lead_encoder.model_name}:{LEAD_CHARS}"
        self.fingerprint = json.dumps(recipe, sort_keys=True)
        self.pipeline = IngestionPipeline(
            transformations=[ChunkTransform(chunk_max_tokens, chunk_overlap_sentences), embed_model],
            disable_cache=True,
        )

    def run(self, paths: Iterable[str | os.PathLike[str]], sync: bool = False, progress: bool | None = None,
            on_file: Callable[[float, int], None] | None = None, stop: threading.Event | None = None) -> IngestReport:
        """Paths are files, folders, or feed and page URLs (ingest/web.py). `on_file(done, total)` is called after
        each source, and within a large one as it is read (`done` then counts the part read: 3.5 of 10 sources),
        for a progress display. When `stop` is set, the run ends after the source being read, with
        everything read so far committed.

        A failed write (disk full, read-only directory) raises IndexStorageError; what was committed before it
        stays, and the next run recovers the rest (see the module docstring)."""
        try:
            return self._run(paths, sync, progress, on_file, stop)
        except (sqlite3.Error, OSError) as exc:
            raise storage_error("writing the index", self.index_dir, exc) from exc
        finally:
            if self._fetcher is not None:
                self._fetcher.close()
                self._fetcher = None

    def _run(self, paths: Iterable[str | os.PathLike[str]], sync: bool, progress: bool | None,
             on_file: Callable[[float, int], None] | None, stop: threading.Event | None) -> IngestReport:
        """The ingest itself.

        A reader thread loads and cleans the files ahead (bounded) while this thread chunks and embeds, and a
        writer thread commits the batch before (`_Committer`), so cleaning (Python) and writing (Chroma, SQLite)
        overlap embedding (native code, both cores). Batches close every `batch_chars` article characters, inside
        a file too; a file's record is committed with its last article."""
        started = time.perf_counter()
        report = IngestReport()
        with IndexLock(self.index_dir):
            self.index.recover()
            given = [str(p) for p in paths]
            urls = list(dict.fromkeys(p for p in given if is_url(p)))
            files, skipped = discover([p for p in given if not is_url(p)])
            report.skipped.extend(skipped)
            sources: list[SourceFile | WebSource] = [*files, *(WebSource(u) for u in urls)]
            same_pipeline = self.index.meta("pipeline") == self.fingerprint
            if sync:  # first: an article moved out of a deleted file into another is then that file's to take
                self._sync(report)
            owners = self._owners()
            claims_refused: set[str] = set()  # sources with a record refused for another's id
            batch = _Batch()
            bar = _progress(sum(f.size for f in files), progress, sources=len(sources) if not files else 0)
            reader = _Reader(sources, self._read_source, lambda f: self._unchanged(f, same_pipeline))
            committer = _Committer()
            done_files, shown = 0, 0  # sources finished; bytes of the current file shown on the bar
            try:
                seen: dict[str, Article] = {}
                kept: set[str] = set()
                read_from: dict[str, str] = {}  # doc id -> the source this run read it from first
                for event in reader:
                    source = event.source
                    first = read_from.get(event.article.id) if isinstance(event, ArticleRead) else None
                    if isinstance(event, ArticleRead) and event.article.id in seen:
                        report.skipped.append(SkippedFile(str(source.path), f"a second document with id "
                                                          f"{event.article.id!r} (the first is kept)"))
                    elif isinstance(event, ArticleRead) and first is not None and isinstance(source, WebSource):
                        kept.add(event.article.id)  # one story in two feeds: read once, listed by both
                        report.unchanged += 1
                        _count(report, source, "unchanged")
                    elif isinstance(event, ArticleRead) and first is not None:
                        report.skipped.append(SkippedFile(str(source.path), f"a second document with id "
                                                          f"{event.article.id!r} (the first, from {first}, is kept)"))
                    elif isinstance(event, ArticleRead) and (owner := _owner_elsewhere(event.article.id, source,
                                                                                         owners)):
                        claims_refused.add(source.key)
                        report.skipped.append(SkippedFile(
                            event.article.path or str(source.path),
                            f"its id {event.article.id!r} is the id of another source's article ({owner}): a record "
                            "cannot replace it; give the record an id of its own"))
                        if isinstance(source, WebSource):
                            _count(report, source, "skipped")
                    elif isinstance(event, ArticleRead):
                        read_from[event.article.id] = str(source.path)
                        outcome = self._add_article(event.article, batch, report)
                        if isinstance(source, WebSource):
                            _count(report, source, outcome)
                        seen[event.article.id] = event.article
                        step = min(len(event.article.text), source.size - shown)
                        bar.update(step)
                        shown += step
                        # Within a file (a big JSONL or archive): each percent read, so a page's bar moves.
                        if on_file is not None and 0 < shown < source.size and \
                                shown * 100 // source.size > (shown - step) * 100 // source.size:
                            on_file(done_files + shown / source.size, len(sources))
                    elif isinstance(event, RecordKept):
                        report.unchanged += 1
                        kept.add(event.doc_id)
                        _count(report, source, "unchanged")
                    elif isinstance(event, FileUnchanged):
                        report.unchanged += event.documents
                    elif isinstance(event, (RecordSkipped, FileFailed)):
                        report.skipped.append(event.skipped)
                        if isinstance(source, WebSource):
                            _count(report, source, "skipped")
                    if isinstance(event, (FileUnchanged, FileEnd, FileFailed)):
                        if isinstance(event, FileEnd):
                            self._end_file(source, seen, kept, event.validator, batch, owners,
                                           source.key in claims_refused)
                        bar.update(source.size - shown if files else 1)
                        seen, kept, shown = {}, set(), 0
                        done_files += 1
                        if on_file is not None:
                            on_file(done_files, len(sources))
                        if stop is not None and stop.is_set():
                            break
                    # A feed is committed when it is read: a long poll of many feeds keeps what it has read.
                    if batch.chars >= self.batch_chars or (isinstance(event, FileEnd) and batch
                                                           and isinstance(source, WebSource)):
                        if isinstance(event, ArticleRead):  # mid-file: its documents so far go with a provisional record
                            self._provisional_file(source, seen, batch)
                        self._flush(batch, report, committer)
                        batch = _Batch()
                        elapsed = time.perf_counter() - started
                        bar.set_postfix(chunks=report.chunks, chunks_per_s=f"{report.chunks / elapsed:.0f}",
                                        refresh=False)
                self._flush(batch, report, committer)
                committer.finish()
            finally:
                committer.close()  # after an error too: no write continues once the lock is released
                reader.close()
                bar.close()
            self.index.set_meta("pipeline", self.fingerprint)
        report.seconds = time.perf_counter() - started
        return report

    # -- steps ---------------------------------------------------------------------------------------
    def _unchanged(self, source: SourceFile | WebSource, same_pipeline: bool) -> int | None:
        """The number of documents of a file whose size and mtime say it is unchanged; None if it must be read
        (a URL always is: its request is conditional instead)."""
        if isinstance(source, WebSource):
            return None
        record = self.index.file_record(source.key)
        if same_pipeline and record and record.mtime_ns == source.mtime_ns and record.size == source.size:
            held = self.index.doc_hashes(record.doc_ids)
            if len(held) == len(set(record.doc_ids)):  # else one was removed or replaced: read the file again
                return len(record.doc_ids)
        return None

    def _owners(self) -> dict[str, set[str]]:
        """Doc id -> the sources (file keys, URLs) whose records hold it."""
        owners: dict[str, set[str]] = {}
        for record in self.index.file_records():
            for doc_id in record.doc_ids:
                owners.setdefault(doc_id, set()).add(record.path)
        return owners

    def _read_source(self, source: SourceFile | WebSource) -> Iterator[SourceItem]:
        """The source's cleaned articles, a SkippedFile for each bad record (IngestError: the whole source), and
        for a URL the entries kept as they were and the validator for its next request."""
        if isinstance(source, WebSource):
            if self._fetcher is None:
                self._fetcher = Fetcher(self.fetch_policy)
            record = self.index.file_record(source.key)
            items: Iterator[RawRecord | SkippedFile | Kept | Validator] = read_url(
                source, record.validator if record else "", set(record.doc_ids) if record else set(), self._fetcher)
        else:
            items = read_records(source, self.max_file_bytes, self.max_article_chars, self.columns)
        for item in items:
            if isinstance(item, RawRecord):
                yield self._article(item)
            else:
                yield item

    def _article(self, record: RawRecord) -> Article | SkippedFile:
        try:
            article = to_article(record)
        except IngestError as exc:
            return SkippedFile(record.path, str(exc))
        if len(article.text) > self.max_article_chars:  # HTML is only measured once its text is extracted
            return SkippedFile(record.path, f"the article is {len(article.text):,} characters, over the "
                                            f"{self.max_article_chars:,}-character limit")
        return article

    def _add_article(self, article: Article, batch: _Batch, report: IngestReport) -> str:
        """Queue the article unless the index holds it as it is: "added", "updated" or "unchanged"."""
        digest = article_hash(article, self.fingerprint)
        known = self.index.doc_hashes([article.id]).get(article.id)
        if known == digest:
            report.unchanged += 1
            return "unchanged"
        batch.writes.append((article, digest, known is not None))
        batch.chars += len(article.text)
        return "added" if known is None else "updated"

    def _end_file(self, source: SourceFile | WebSource, articles: dict[str, Article], kept: set[str],
                  validator: str, batch: _Batch, owners: dict[str, set[str]], claim_refused: bool) -> None:
        """A source was read whole: record it. A file's documents it no longer holds are dropped (and are no longer
        its in `owners`); a feed's stay (a feed lists only its latest entries), and an entry that failed this time
        keeps its document."""
        record = self.index.file_record(source.key)
        previous = set(record.doc_ids) if record else set()
        if isinstance(source, WebSource):
            held = tuple(sorted(previous | set(articles) | kept))
        else:
            dropped = sorted(previous - set(articles))
            batch.removed.extend(dropped)
            for doc_id in dropped:
                owners.get(doc_id, set()).discard(source.key)
            held = tuple(articles)
        # A file with a record refused for another source's id is read again next time: that source may let it go.
        mtime_ns = -1 if claim_refused else source.mtime_ns
        batch.files.append(FileRecord(source.key, mtime_ns, source.size, held, validator))

    def _provisional_file(self, source: SourceFile | WebSource, articles: dict[str, Article], batch: _Batch) -> None:
        """A file whose documents are committed before its end is recorded in the same transaction, with every
        document it held or holds so far (so `--sync` can remove them all if the file is then deleted) and an
        mtime no file has (so the next run reads it again). Without it, a kill between this commit and the file's
        end left documents no file record named: a deleted file's documents then survived `--sync`."""
        record = self.index.file_record(source.key)
        held = set(record.doc_ids) if record else set()
        batch.files.append(FileRecord(source.key, -1, -1, tuple(sorted(held | set(articles)))))

    def _check_free_space(self, batch: _Batch) -> None:
        """Refuse a batch the disk may not hold: a write failing inside Chroma leaves its log unapplied."""
        free = shutil.disk_usage(self.index_dir).free
        need = self.min_free_bytes + 4 * batch.chars
        if free < need:
            raise IndexStorageError(
                f"the disk is full: {free / 2**20:.0f} MB free where the index is ({self.index_dir}), and ingesting "
                f"needs at least {need / 2**20:.0f} MB free (RAG_MIN_FREE_BYTES plus 4x the batch); free some "
                "space, then run the same command again")

    def _flush(self, batch: _Batch, report: IngestReport, committer: _Committer) -> None:
        """Chunk and embed the batch here, then hand its commit to `committer`, which writes it while the next
        batch is embedded (on 2 cores the encoder leaves room for Chroma's and SQLite's writes)."""
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
        articles = [a for a, _, _ in batch.writes]
        leads = encode_leads(self.lead_encoder, articles) if self.lead_encoder is not None else [b""] * len(articles)
        writes = [DocumentWrite(a, digest, chunks[a.id], lead)
                  for (a, digest, _), lead in zip(batch.writes, leads, strict=True)]

        def commit() -> None:
            if batch.writes:  # here, once the commit before it is written: the disk as this write will find it
                self._check_free_space(batch)
            self.index.write(writes, nodes, files=batch.files, removed_doc_ids=batch.removed)
            for _, _, is_update in batch.writes:
                if is_update:
                    report.updated += 1
                else:
                    report.added += 1
            report.removed += len(batch.removed)
            report.chunks += len(nodes)
            report.embedded += len(nodes)

        committer.submit(commit)

    def _sync(self, report: IngestReport) -> None:
        """Drop the documents of files that are gone, but any another source's record still holds."""
        records = self.index.file_records()
        gone = [r for r in records if not is_url(r.path) and not Path(r.path).exists()]
        if not gone:
            return
        still_held = {d for r in records if r not in gone for d in r.doc_ids}
        doc_ids = sorted({d for r in gone for d in r.doc_ids} - still_held)
        self.index.remove(doc_ids, removed_files=[r.path for r in gone])
        report.removed += len(doc_ids)

    def remove_documents(self, doc_ids: Sequence[str]) -> int:
        """Delete documents by id (their source files stay as they are). Returns how many existed."""
        try:
            return self._remove_documents(doc_ids)
        except (sqlite3.Error, OSError) as exc:
            raise storage_error("removing documents from the index", self.index_dir, exc) from exc

    def _remove_documents(self, doc_ids: Sequence[str]) -> int:
        with IndexLock(self.index_dir):
            existing = [d for d in doc_ids if self.index.doc_hashes([d])]
            files = [r for r in self.index.file_records() if set(r.doc_ids) & set(existing)]
            rewritten = [
                FileRecord(r.path, r.mtime_ns, r.size, tuple(d for d in r.doc_ids if d not in existing))
                for r in files
            ]
            self.index.remove(existing, files=rewritten)
        return len(existing)


def _owner_elsewhere(doc_id: str, source: SourceFile | WebSource, owners: Mapping[str, set[str]]) -> str:
    """The source, other than `source`, that an article's id belongs to ("" if none): a source whose record holds
    it (one story in two feeds is shared), or the file a record's own id names, as doc ids of files are paths."""
    holders = owners.get(doc_id, set()) - {source.key}
    if isinstance(source, WebSource):
        holders = {h for h in holders if not is_url(h)}
    if holders:
        return sorted(holders)[0]
    if isinstance(source, WebSource) or is_url(doc_id):
        return ""
    named = Path(doc_id.split("#", 1)[0])
    try:
        if named.is_file() and str(named.resolve()) != source.key:
            return str(named)
    except OSError:
        return ""
    return ""


def _count(report: IngestReport, source: SourceFile | WebSource, outcome: str) -> None:
    counts = report.urls.setdefault(source.key, {"added": 0, "updated": 0, "unchanged": 0, "skipped": 0})
    counts[outcome] += 1


def _progress(total_bytes: int, enabled: bool | None, sources: int = 0) -> Any:
    """A bar over the corpus bytes (so its rate and ETA hold for one big JSONL file too), with chunks/s; over
    `sources` instead when there are only URLs."""
    from tqdm import tqdm

    disable = (not sys.stderr.isatty()) if enabled is None else not enabled
    try:  # a terminal that reports no width (a bare pty, some containers) would get a bar of none: 80 columns
        width = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        width = 0
    size: dict[str, Any] = {"dynamic_ncols": True} if width else {"ncols": 80, "nrows": 24}
    if sources:
        return tqdm(total=sources, desc="ingest", unit="url", file=sys.stderr, disable=disable, **size)
    return tqdm(total=total_bytes, desc="ingest", unit="B", unit_scale=True, file=sys.stderr, disable=disable, **size)


@dataclass(frozen=True)
class FileUnchanged:
    """A file skipped because it is as last ingested (size, mtime, pipeline): its documents are kept."""

    source: SourceFile | WebSource
    documents: int


@dataclass(frozen=True)
class ArticleRead:
    source: SourceFile | WebSource
    article: Article


@dataclass(frozen=True)
class RecordSkipped:
    """One record of a file could not be used (the file's other records go on)."""

    source: SourceFile | WebSource
    skipped: SkippedFile


@dataclass(frozen=True)
class FileFailed:
    """A file that could not be read at all."""

    source: SourceFile | WebSource
    skipped: SkippedFile


@dataclass(frozen=True)
class RecordKept:
    """A feed entry as it was at the last poll: its document stays, unread."""

    source: WebSource
    doc_id: str


@dataclass(frozen=True)
class FileEnd:
    """After a source's last article; for a URL, with what its next request is made conditional on."""

    source: SourceFile | WebSource
    validator: str = ""


ReadEvent = FileUnchanged | ArticleRead | RecordSkipped | RecordKept | FileFailed | FileEnd
SourceItem = Article | SkippedFile | Kept | Validator


@dataclass(frozen=True)
class _Finished:
    error: BaseException | None = None  # raised in the consumer's thread


class _Reader:
    """Reads and cleans sources on a background thread, a bounded queue ahead of the consumer; yields the
    ReadEvents of each source in order."""

    def __init__(self, sources: Sequence[SourceFile | WebSource],
                 read: Callable[[SourceFile | WebSource], Iterator[SourceItem]],
                 unchanged: Callable[[SourceFile | WebSource], int | None], ahead: int = 64) -> None:
        self._queue: queue.Queue[ReadEvent | _Finished] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(sources, read, unchanged), daemon=True,
                                        name="ingest-reader")
        self._thread.start()

    def _put(self, item: ReadEvent | _Finished) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, sources: Sequence[SourceFile | WebSource],
                 read: Callable[[SourceFile | WebSource], Iterator[SourceItem]],
                 unchanged: Callable[[SourceFile | WebSource], int | None]) -> None:
        try:
            for source in sources:
                count = unchanged(source)
                if count is not None:
                    if not self._put(FileUnchanged(source, count)):
                        return
                    continue
                validator = ""
                try:
                    for item in read(source):
                        if isinstance(item, Validator):
                            validator = item.value
                            continue
                        event: ReadEvent
                        if isinstance(item, SkippedFile):
                            event = RecordSkipped(source, item)
                        elif isinstance(item, Kept):
                            assert isinstance(source, WebSource)
                            event = RecordKept(source, item.doc_id)
                        else:
                            event = ArticleRead(source, item)
                        if not self._put(event):
                            return
                except IngestError as exc:
                    self._put(FileFailed(source, SkippedFile(str(source.path), str(exc))))
                    continue
                if not self._put(FileEnd(source, validator)):
                    return
            self._put(_Finished())
        except BaseException as exc:  # surfaced in the consumer's thread
            self._put(_Finished(exc))

    def __iter__(self) -> Iterator[ReadEvent]:
        while True:
            item = self._queue.get()
            if isinstance(item, _Finished):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
