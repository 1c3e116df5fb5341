"""Assistant: the public Python API. Opens (or creates) an index, ingests files, answers questions."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.answer import ExtractiveAnswerer
from rag.catalog import SCHEMA_VERSION, Catalog, DocumentSummary
from rag.config import Settings
from rag.dedupe import collapse_duplicates
from rag.embed import SentenceEmbedding, model_id
from rag.rerank import Candidate, SentenceRanker
from rag.retrieve import Retriever, standalone_query
from rag.store import VectorIndex
from rag.types import Answer, Article, Filters, IngestReport, Passage

MAX_QUESTION_CHARS = 2000
EMPTY_QUESTION = "Ask a question about the articles in the corpus."
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clean_question(question: str) -> str:
    return _CONTROL_RE.sub(" ", question or "").strip()[:MAX_QUESTION_CHARS]


class Assistant:
    """Grounded question answering over an index of news articles.

    Usage: `Assistant(index_dir=".rag").ingest(["corpus/"])`, then `.ask("Who requested CSTO troops?")`.
    """

    def __init__(self, index_dir: str | os.PathLike[str] | None = None, *, settings: Settings | None = None,
                 **overrides: Any) -> None:
        base = settings if settings is not None else Settings.from_env()
        self.settings = base.with_overrides(index_dir=index_dir, **overrides)
        s = self.settings
        self.embed_model = SentenceEmbedding(s.embed_model, embed_batch_size=s.embed_batch_size)
        self.catalog = Catalog(Path(s.index_dir) / "catalog.sqlite3")
        self.catalog.ensure_meta(
            {"embed_model": model_id(s.embed_model), "schema": SCHEMA_VERSION,
             "chroma": s.chroma_url or "embedded", "collection": s.collection}
        )
        self.vectors = VectorIndex(Path(s.index_dir), s.collection, model_id(s.embed_model), s.chroma_url)
        self.retriever = Retriever(self.embed_model, self.vectors, self.catalog, mode=s.retrieval)
        self.ranker = SentenceRanker(self.embed_model, document_frequencies=self.catalog.document_frequencies)
        self.answerer = ExtractiveAnswerer(self.ranker, s.min_support, s.max_answer_sentences)
        self.preferred_sources = tuple(x.strip() for x in s.preferred_sources.split(",") if x.strip())

    # -- ingestion -----------------------------------------------------------------------------------
    def ingest(self, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], sync: bool = False,
               progress: bool | None = None, on_file: Callable[[int, int], None] | None = None) -> IngestReport:
        """Add or update the articles in these files and folders; with sync, drop those whose files are gone.

        `progress`: a terminal progress bar (default: when stderr is a TTY); `on_file(done, total)` after each file."""

        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        try:
            return self._ingestor().run(paths, sync=sync, progress=progress, on_file=on_file)
        finally:
            self.ranker.clear_caches()

    def resync(self, on_file: Callable[[int, int], None] | None = None) -> IngestReport:
        """Re-read every file the index knows: changed files re-ingested (unchanged ones skipped by size and
        mtime), documents whose files are gone removed."""
        known = [r.path for r in self.catalog.file_records() if Path(r.path).exists()]
        return self.ingest(known, sync=True, progress=False, on_file=on_file)

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Delete documents by id; returns how many were in the index."""
        try:
            return self._ingestor().remove_documents(doc_ids)
        finally:
            self.ranker.clear_caches()

    def _ingestor(self) -> Any:
        from ingest.pipeline import Ingestor

        s = self.settings
        return Ingestor(Path(s.index_dir), self.catalog, self.vectors, self.embed_model,
                        chunk_max_tokens=s.chunk_max_tokens, chunk_overlap_sentences=s.chunk_overlap_sentences,
                        max_file_bytes=s.max_file_bytes, batch_chars=s.ingest_batch_chars)

    # -- questions -----------------------------------------------------------------------------------
    def search(self, question: str, history: Sequence[tuple[str, str]] = (), top_k: int | None = None,
               filters: Filters | None = None) -> list[Passage]:
        """The top_k passages for a question: hybrid retrieval of a candidate pool, near-duplicates collapsed,
        re-ranked by their best sentence."""
        return self._search(_clean_question(question), history, top_k or self.settings.top_k, filters)[0]

    def _search(self, question: str, history: Sequence[tuple[str, str]], top_k: int,
                filters: Filters | None) -> tuple[list[Passage], list[Passage], list[Candidate], dict[str, Article]]:
        """(top passages, the whole pool, its scored sentences, their articles)."""
        if not re.search(r"\w", question):
            return [], [], [], {}
        query = standalone_query(question, [(str(q), str(a)) for q, a in history])
        pool = self.retriever.run(query, max(self.settings.candidate_pool, top_k), filters)
        pool = collapse_duplicates(pool, self.preferred_sources)
        articles = self.catalog.articles(p.doc_id for p in pool)
        # A follow-up is matched with the previous question's words; the answer type is the question's own.
        ranked = self.ranker.score(question, pool, articles, query)
        return self.ranker.rerank(pool, ranked)[:top_k], pool, ranked, articles

    def ask(self, question: str, history: Sequence[tuple[str, str]] = (), top_k: int | None = None,
            filters: Filters | None = None, passages: Sequence[Passage] | None = None) -> Answer:
        """Answer from the corpus with citations, or abstain. `history` is [(question, answer), ...].

        `passages`: answer from these (e.g. what `search` returned, then narrowed by the caller) instead of
        retrieving. Timings: `retrieve` covers retrieval and sentence re-ranking, `answer` the composing."""
        started = time.perf_counter()
        question = _clean_question(question)
        if not re.search(r"\w", question):
            return Answer(question=question, text=EMPTY_QUESTION, abstained=True,
                          timings_ms={"retrieve": 0.0, "answer": 0.0, "total": 0.0})
        k = top_k or self.settings.top_k
        query = standalone_query(question, [(str(q), str(a)) for q, a in history])
        if passages is None:
            top, pool, ranked, articles = self._search(question, history, k, filters)
        else:
            top = pool = list(passages)
            articles = self.catalog.articles(p.doc_id for p in pool)
            ranked = self.ranker.score(question, pool, articles, query)
        retrieved = time.perf_counter()
        answer = self.answerer.run(question, pool, articles, ranked, query)
        done = time.perf_counter()
        timings = {
            "retrieve": round((retrieved - started) * 1000, 1),
            "answer": round((done - retrieved) * 1000, 1),
            "total": round((done - started) * 1000, 1),
        }
        return replace(answer, passages=tuple(top), timings_ms=timings)

    # -- the corpus ----------------------------------------------------------------------------------
    def documents(self) -> list[DocumentSummary]:
        return self.catalog.documents()

    def sources(self) -> list[str]:
        """The distinct sources of the indexed articles (for filters)."""
        return self.catalog.sources()

    def article(self, doc_id: str) -> Article | None:
        return self.catalog.article(doc_id)

    def stats(self) -> dict[str, int]:
        docs, chunks = self.catalog.counts()
        return {"documents": docs, "chunks": chunks}

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
