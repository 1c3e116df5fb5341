"""The committed record of the index (SQLite): documents, their chunks, and the files they came from.

Chroma holds vectors; this catalog decides which of them are live. A batch is committed here in one
transaction only after its vectors are written, so an interrupted ingest leaves no half-visible document.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import IndexMismatchError, open_retrying_locks
from rag.types import Article, Chunk, published_day

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, doc_hash TEXT NOT NULL, path TEXT NOT NULL, title TEXT NOT NULL,
    source TEXT NOT NULL, published TEXT NOT NULL, url TEXT NOT NULL, authors TEXT NOT NULL,
    text TEXT NOT NULL, comments TEXT NOT NULL, ingested_at REAL NOT NULL,
    published_source TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, idx INTEGER NOT NULL,
    start_char INTEGER NOT NULL, end_char INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (doc_id);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, doc_ids TEXT NOT NULL,
    validator TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS pending_deletes (chunk_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS leads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL UNIQUE, vector BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, chunk_id UNINDEXED, source UNINDEXED, published_day UNINDEXED,
    tokenize = 'porter unicode61 remove_diacritics 2');
"""
# Keyword (BM25) index rows share the chunk's rowid, and are written and deleted in the same
# transaction as the chunk: the keyword index can never disagree with the live chunks.
# `published_day` is rag.types.published_day, registered as an SQL function on the connection.
_FTS_INSERT = (
    "INSERT INTO chunks_fts (rowid, title, text, chunk_id, source, published_day) "
    "SELECT c.rowid, d.title, substr(d.text, c.start_char + 1, c.end_char - c.start_char), c.chunk_id, d.source, "
    "published_day(d.published) FROM chunks c JOIN documents d ON d.doc_id = c.doc_id"
)


@dataclass(frozen=True)
class FileRecord:
    """What was ingested from one source: a file (its path, mtime and size) or a URL (mtime and size 0, and the
    `validator` its next request is made conditional on: ETag, Last-Modified, a feed's entries)."""

    path: str
    mtime_ns: int
    size: int
    doc_ids: tuple[str, ...]
    validator: str = ""


CATALOG_FILE = "catalog.sqlite3"  # in the index directory


def index_exists(index_dir: str | Path) -> bool:
    """Whether `index_dir` holds an index (its catalog): only ingest makes one."""
    return (Path(index_dir) / CATALOG_FILE).is_file()


_FILE_COLUMNS = "path, mtime_ns, size, doc_ids, validator"
_CACHED_TERMS = 20_000  # document frequencies kept between writes (a few per question asked)


def _file_record(row: Sequence[Any]) -> FileRecord:
    return FileRecord(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4])


@dataclass(frozen=True)
class DocumentSummary:
    doc_id: str
    title: str
    source: str
    published: str
    url: str
    path: str
    chunks: int
    ingested_at: float


@dataclass(frozen=True)
class DocumentWrite:
    """An article with its chunks, and optionally its lead vector (rag/index/leads.py: float32 bytes)."""

    article: Article
    doc_hash: str
    chunks: Sequence[Chunk]
    lead: bytes = b""


@dataclass(frozen=True)
class LeadRows:
    """Every lead vector of the catalog, with what filters need: the article's source and published day."""

    doc_ids: list[str]
    vectors: list[bytes]
    sources: list[str]
    days: list[int]


class Catalog:
    # The keyword search leaves out a word in more than this share of the chunks, and in more than this many, while
    # rarer words of the question remain (`rare_terms`). Chosen before measuring (idf about 2.2 at 10%); on
    # bench.scale's 121k-chunk index (its 200 questions) the FTS5 search went from 33 / 82 ms p50 / p95 to 17 / 43 ms.
    common_term_share = 0.1
    common_term_min_chunks = 5000

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        def close() -> None:
            if getattr(self, "_db", None) is not None:
                self._db.close()

        open_retrying_locks(lambda: self._open(path), f"opening the index catalog {path}", path.parent,
                            errors=(sqlite3.Error, OSError), reset=close, timeout_s=busy_timeout_s)

    def _open(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.create_function("published_day", 1, published_day, deterministic=True)
        self._written_at: tuple[int, int] | None = None  # (data version, own changes) when `_read_cache` was filled
        self._read_cache: dict[str, Any] = {}
        with self._lock:
            self._db.executescript(_SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(documents)")}
            if "published_source" not in columns:  # an index made before dates said where they came from
                self._db.execute("ALTER TABLE documents ADD COLUMN published_source TEXT NOT NULL DEFAULT ''")
            if "validator" not in {r[1] for r in self._db.execute("PRAGMA table_info(files)")}:  # before URLs
                self._db.execute("ALTER TABLE files ADD COLUMN validator TEXT NOT NULL DEFAULT ''")
            if self.meta("keyword_index") != "1":  # an index made before the keyword index existed
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM chunks_fts")
                self._db.execute(_FTS_INSERT)
                self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('keyword_index', '1')")
                self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- settings the index was built with ---------------------------------------------------------
    def ensure_meta(self, expected: dict[str, str]) -> None:
        """Record the settings on first use; refuse an index built with different ones."""
        with self._lock:
            stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            for key, value in expected.items():
                if key in stored and stored[key] != value:
                    raise IndexMismatchError(
                        f"this index was built with {key}={stored[key]!r}, but {key}={value!r} is configured: "
                        "re-ingest into a new index directory (or delete this one), or configure the "
                        "settings it was built with"
                    )
            missing = [(k, v) for k, v in expected.items() if k not in stored]
            if not missing:  # an existing index is only read here (it may be on a read-only disk)
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", missing)
            self._db.execute("COMMIT")

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- reads ---------------------------------------------------------------------------------------
    def file_record(self, path: str) -> FileRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (path,)).fetchone()
        return _file_record(row) if row else None

    def file_records(self) -> list[FileRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files").fetchall()
        return [_file_record(r) for r in rows]

    def doc_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        return self._column("doc_hash", doc_ids)

    def published(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """Each document's date ("" when undated), without reading its text."""
        return self._column("published", doc_ids)

    def _column(self, column: str, doc_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(doc_ids))
        out: dict[str, str] = {}
        with self._lock:
            for batch in _batches(ids):
                marks = ",".join("?" * len(batch))
                out.update(
                    self._db.execute(
                        f"SELECT doc_id, {column} FROM documents WHERE doc_id IN ({marks})", batch
                    ).fetchall()
                )
        return out

    def article(self, doc_id: str) -> Article | None:
        return self.articles([doc_id]).get(doc_id)

    def articles(self, doc_ids: Iterable[str]) -> dict[str, Article]:
        ids = list(dict.fromkeys(doc_ids))
        out: dict[str, Article] = {}
        with self._lock:
            for batch in _batches(ids):
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    "SELECT doc_id, text, title, source, published, url, authors, comments, path, published_source "
                    f"FROM documents WHERE doc_id IN ({marks})",
                    batch,
                ).fetchall()
                for r in rows:
                    out[r[0]] = Article(
                        id=r[0], text=r[1], title=r[2], source=r[3], published=r[4], url=r[5],
                        authors=tuple(json.loads(r[6])), comments=tuple(json.loads(r[7])), path=r[8],
                        published_source=r[9],
                    )
        return out

    def chunks(self, chunk_ids: Iterable[str]) -> dict[str, Chunk]:
        """The live chunks among chunk_ids (ids Chroma returns but the catalog does not know are dropped)."""
        ids = list(dict.fromkeys(chunk_ids))
        out: dict[str, Chunk] = {}
        with self._lock:
            for batch in _batches(ids):
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    "SELECT c.chunk_id, c.doc_id, c.idx, c.start_char, c.end_char, "
                    "substr(d.text, c.start_char + 1, c.end_char - c.start_char) "
                    f"FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE c.chunk_id IN ({marks})",
                    batch,
                ).fetchall()
                for r in rows:
                    out[r[0]] = Chunk(id=r[0], doc_id=r[1], index=r[2], start_char=r[3], end_char=r[4], text=r[5])
        return out

    def chunk_ids(self, doc_id: str | None = None) -> list[str]:
        with self._lock:
            if doc_id is None:
                rows = self._db.execute("SELECT chunk_id FROM chunks").fetchall()
            else:
                rows = self._db.execute("SELECT chunk_id FROM chunks WHERE doc_id = ?", (doc_id,)).fetchall()
        return [r[0] for r in rows]

    def iter_chunks(self, batch_size: int = 2000) -> Iterator[Chunk]:
        """Every live chunk, in (doc_id, idx) order."""
        last = ("", -1)
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT c.chunk_id, c.doc_id, c.idx, c.start_char, c.end_char, "
                    "substr(d.text, c.start_char + 1, c.end_char - c.start_char) "
                    "FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
                    "WHERE (c.doc_id, c.idx) > (?, ?) ORDER BY c.doc_id, c.idx LIMIT ?",
                    (last[0], last[1], batch_size),
                ).fetchall()
            if not rows:
                return
            for r in rows:
                yield Chunk(id=r[0], doc_id=r[1], index=r[2], start_char=r[3], end_char=r[4], text=r[5])
            last = (rows[-1][1], rows[-1][2])

    def documents(self) -> list[DocumentSummary]:
        with self._lock:
            rows = self._db.execute(
                "SELECT d.doc_id, d.title, d.source, d.published, d.url, d.path, d.ingested_at, "
                "(SELECT count(*) FROM chunks c WHERE c.doc_id = d.doc_id) FROM documents d ORDER BY d.doc_id"
            ).fetchall()
        return [
            DocumentSummary(doc_id=r[0], title=r[1], source=r[2], published=r[3], url=r[4], path=r[5],
                            ingested_at=r[6], chunks=r[7])
            for r in rows
        ]

    def sources(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT source FROM documents WHERE source != '' ORDER BY source").fetchall()
        return [r[0] for r in rows]

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        with self._lock:
            docs = self._db.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    def live_chunk_ids(self, chunk_ids: Iterable[str]) -> list[str]:
        ids = list(chunk_ids)
        out: list[str] = []
        with self._lock:
            for batch in _batches(ids):
                marks = ",".join("?" * len(batch))
                out.extend(r[0] for r in self._db.execute(f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({marks})", batch))
        return out

    def pending_deletes(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT chunk_id FROM pending_deletes").fetchall()]

    # -- keyword search (SQLite FTS5, BM25) ------------------------------------------------------------
    def admitted(self, chunk_ids: Iterable[str], sources: Sequence[str] = (),
                 day_range: tuple[int, int] | None = None) -> set[str]:
        """The live chunks among chunk_ids whose article is from one of `sources` (any when empty) and was
        published within `day_range`: what a Chroma `where` on the chunk metadata (Filters.chroma_where) passes."""
        ids = list(dict.fromkeys(chunk_ids))
        out: set[str] = set()
        with self._lock:
            for batch in _batches(ids):
                where, args = _filter_clause("d.source", "published_day(d.published)", sources, day_range)
                sql = ("SELECT c.chunk_id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
                       f"WHERE c.chunk_id IN ({','.join('?' * len(batch))}){where}")
                out.update(r[0] for r in self._db.execute(sql, [*batch, *args]))
        return out

    def keyword_search(self, terms: Sequence[str], top_k: int, sources: Sequence[str] = (),
                       day_range: tuple[int, int] | None = None) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score, higher is better) of the chunks matching any of the terms (but the too common
        ones, `rare_terms`), best first."""
        match = _match_expression(self.rare_terms(terms))
        if not match or top_k <= 0:
            return []
        where, filter_args = _filter_clause("source", "published_day", sources, day_range)
        sql = ("SELECT chunk_id, -bm25(chunks_fts, 0.5, 1.0) AS score FROM chunks_fts WHERE chunks_fts MATCH ?"
               f"{where} ORDER BY bm25(chunks_fts, 0.5, 1.0) LIMIT ?")
        args: list[object] = [match, *filter_args, top_k]
        with self._lock:
            try:
                rows = self._db.execute(sql, args).fetchall()
            except sqlite3.OperationalError:  # a term FTS5 cannot parse: no keyword evidence, not an error
                return []
        return [(r[0], float(r[1])) for r in rows]

    def rare_terms(self, terms: Sequence[str]) -> list[str]:
        """`terms` without those in more than `common_term_share` of the chunks (and more than
        `common_term_min_chunks` of them), unless no other term would remain. BM25 weighs such a word little (idf
        about 2.2 at a 10% share), and scoring costs a row per chunk it matches: at 121k chunks "said" is in 46k.
        Below `common_term_min_chunks` chunks nothing is counted or left out."""
        if self.chunk_count() <= self.common_term_min_chunks:
            return list(terms)
        dfs, total = self.document_frequencies(terms)
        limit = max(self.common_term_share * total, self.common_term_min_chunks)
        kept = [t for t in terms if dfs.get(t, 0) <= limit]
        return kept or list(terms)

    def chunk_count(self) -> int:
        """How many chunks the catalog holds; counted again only after a write (by this connection or another)."""
        with self._lock:
            cache = self._since_last_write()
            if "chunk_count" not in cache:
                cache["chunk_count"] = int(self._db.execute("SELECT count(*) FROM chunks").fetchone()[0])
            return int(cache["chunk_count"])

    def document_frequencies(self, terms: Sequence[str]) -> tuple[dict[str, int], int]:
        """How many live chunks contain each term (FTS5's own stemming), and how many chunks there are. Each term's
        count is kept until a write: the keyword search (`rare_terms`) and the sentence ranker's idf ask for the
        same words of a question."""
        out: dict[str, int] = {}
        total = self.chunk_count()
        with self._lock:
            known: dict[str, int] = self._since_last_write().setdefault("document_frequencies", {})
            for term in dict.fromkeys(terms):
                if term in known:
                    out[term] = known[term]
                    continue
                match = _match_expression([term])
                if not match:
                    continue
                try:
                    out[term] = int(self._db.execute(
                        "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (match,)).fetchone()[0])
                except sqlite3.OperationalError:
                    out[term] = 0
                if len(known) >= _CACHED_TERMS:
                    known.clear()
                known[term] = out[term]
        return out, total

    def admits_any(self, sources: Sequence[str] = (), day_range: tuple[int, int] | None = None) -> bool:
        """Whether any article is from one of `sources` (any when empty) and published within `day_range`: when
        none is, a filtered search can be skipped (Chroma's filtered search scans every chunk's metadata to find
        nothing). The (source, day) pairs of the articles are read once until a write."""
        with self._lock:
            cache = self._since_last_write()
            if "days_by_source" not in cache:
                read: dict[str, list[int]] = {}
                for source, day in self._db.execute(
                        "SELECT DISTINCT source, published_day(published) FROM documents ORDER BY 2"):
                    read.setdefault(source, []).append(int(day))
                cache["days_by_source"] = read
            days_by_source: dict[str, list[int]] = cache["days_by_source"]
        for source in (sources or days_by_source):
            days = days_by_source.get(source, [])
            if days and (day_range is None or _any_between(days, *day_range)):
                return True
        return False

    def _since_last_write(self) -> dict[str, Any]:
        """Reads kept until the catalog is written, by this connection (its total_changes) or another (SQLite's
        data_version); emptied then. The caller holds the lock."""
        written_at = (int(self._db.execute("PRAGMA data_version").fetchone()[0]), self._db.total_changes)
        if written_at != self._written_at:
            self._written_at, self._read_cache = written_at, {}
        return self._read_cache

    # -- writes --------------------------------------------------------------------------------------
    def commit(
        self,
        writes: Sequence[DocumentWrite],
        files: Sequence[FileRecord] = (),
        removed_doc_ids: Sequence[str] = (),
        removed_files: Sequence[str] = (),
    ) -> list[str]:
        """Apply one batch atomically. Returns chunk ids no longer live; they are also queued in
        pending_deletes until `clear_pending` confirms Chroma dropped them."""
        now = time.time()
        stale: list[str] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for doc_id in list(removed_doc_ids) + [w.article.id for w in writes]:
                    old = [r[0] for r in self._db.execute("SELECT chunk_id FROM chunks WHERE doc_id = ?", (doc_id,))]
                    stale.extend(old)
                    self._db.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks WHERE doc_id = ?)",
                                     (doc_id,))
                    self._db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                    self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
                    self._db.execute("DELETE FROM leads WHERE doc_id = ?", (doc_id,))
                for w in writes:
                    a = w.article
                    self._db.execute(
                        "INSERT INTO documents (doc_id, doc_hash, path, title, source, published, url, authors, "
                        "text, comments, ingested_at, published_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (a.id, w.doc_hash, a.path, a.title, a.source, a.published, a.url,
                         json.dumps(list(a.authors)), a.text, json.dumps(list(a.comments)), now, a.published_source),
                    )
                    self._db.executemany(
                        "INSERT INTO chunks (chunk_id, doc_id, idx, start_char, end_char) VALUES (?, ?, ?, ?, ?)",
                        [(c.id, c.doc_id, c.index, c.start_char, c.end_char) for c in w.chunks],
                    )
                    self._db.execute(_FTS_INSERT + " WHERE c.doc_id = ?", (a.id,))
                    if w.lead:
                        self._db.execute("INSERT INTO leads (doc_id, vector) VALUES (?, ?)", (a.id, w.lead))
                for f in files:
                    self._db.execute(
                        "INSERT OR REPLACE INTO files (path, mtime_ns, size, doc_ids, validator) VALUES (?, ?, ?, ?, ?)",
                        (f.path, f.mtime_ns, f.size, json.dumps(list(f.doc_ids)), f.validator),
                    )
                for path in removed_files:
                    self._db.execute("DELETE FROM files WHERE path = ?", (path,))
                live = {c.id for w in writes for c in w.chunks}
                stale = [cid for cid in dict.fromkeys(stale) if cid not in live]
                self._db.executemany("INSERT OR IGNORE INTO pending_deletes (chunk_id) VALUES (?)", [(c,) for c in stale])
                # A chunk id made live again must not be deleted by an older pending entry.
                self._db.executemany("DELETE FROM pending_deletes WHERE chunk_id = ?", [(c,) for c in live])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return stale

    # -- article lead vectors (rag/index/leads.py) ----------------------------------------------------
    def leads_version(self) -> tuple[int, int]:
        """Changes whenever a lead vector is added, replaced or removed (row count, highest sequence number:
        sequence numbers are never reused), so a reader of the vectors knows when to load them again."""
        with self._lock:
            row = self._db.execute("SELECT count(*), coalesce(max(seq), 0) FROM leads").fetchone()
        return int(row[0]), int(row[1])

    def lead_rows(self) -> LeadRows:
        with self._lock:
            rows = self._db.execute(
                "SELECT l.doc_id, l.vector, d.source, published_day(d.published) FROM leads l "
                "JOIN documents d ON d.doc_id = l.doc_id ORDER BY l.seq").fetchall()
        return LeadRows([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [int(r[3]) for r in rows])

    def add_pending(self, chunk_ids: Sequence[str]) -> None:
        """Note ids about to be written to Chroma: if they never go live, the next ingest deletes them."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR IGNORE INTO pending_deletes (chunk_id) VALUES (?)", [(c,) for c in chunk_ids])
            self._db.execute("COMMIT")

    def clear_pending(self, chunk_ids: Sequence[str]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM pending_deletes WHERE chunk_id = ?", [(c,) for c in chunk_ids])
            self._db.execute("COMMIT")


def _match_expression(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of the terms, each quoted as a literal phrase.

    >>> print(_match_expression(['CSTO', 'troops', 'a"b']))
    "csto" OR "troops" OR "a""b"
    """
    quoted = ['"' + t.lower().replace('"', '""') + '"' for t in dict.fromkeys(terms) if t.strip()]
    return " OR ".join(quoted)


def _filter_clause(source_column: str, day_expression: str, sources: Sequence[str],
                   day_range: tuple[int, int] | None) -> tuple[str, list[object]]:
    """(" AND …" restricting to the sources and the inclusive day range, its parameters); ("", []) for none."""
    sql, args = "", list[object]()
    if sources:
        sql += f" AND {source_column} IN ({','.join('?' * len(sources))})"
        args.extend(sources)
    if day_range is not None:
        sql += f" AND {day_expression} BETWEEN ? AND ?"
        args.extend(day_range)
    return sql, args


def _any_between(sorted_days: Sequence[int], low: int, high: int) -> bool:
    """Whether a sorted list holds a day in [low, high].

    >>> _any_between([0, 20220601, 20220815], 20220701, 20220731), _any_between([20220601], 0, 20220601)
    (False, True)
    """
    at = bisect.bisect_left(sorted_days, low)
    return at < len(sorted_days) and sorted_days[at] <= high


def _batches(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]
