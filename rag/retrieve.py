"""Question (+ chat history) -> the top-k live passages: dense (Chroma) and BM25 (catalog FTS5), fused."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rag.catalog import Catalog
from rag.config import RETRIEVAL_MODES
from rag.lexical import STOPWORDS, tokens
from rag.store import VectorIndex
from rag.types import Filters, Passage

# Words that make a question lean on the previous turn ("did he", "that decision", "there").
_ANAPHORA = frozenset(
    "he she him her his hers they them their theirs it its this that these those there then such "
    "former latter same".split()
)
_OVERFETCH = 2  # Chroma may hold vectors of an interrupted ingest that the catalog does not serve
# With filters, this many unfiltered nearest chunks are checked against them first: Chroma's filtered search
# scans the metadata (65 ms on a 13k-chunk index, against 2 ms unfiltered), and most filters (a date cut, a big
# source) keep most chunks. Only when too few of them pass is Chroma asked to filter.
_POSTFILTER_FETCH = 64


def standalone_query(question: str, history: Sequence[tuple[str, str]] = ()) -> str:
    """The text to retrieve with: the question itself, or, for a follow-up that leans on the
    conversation (a pronoun, or too few words of its own), the previous question prepended.

    >>> standalone_query("On which channel did he speak?", [("Who is Ruslan Osipenko?", "An expert.")])
    'Who is Ruslan Osipenko? On which channel did he speak?'
    >>> standalone_query("Who requested CSTO troops?", [("Who is Ruslan Osipenko?", "An expert.")])
    'Who requested CSTO troops?'
    """
    question = question.strip()
    if not history:
        return question
    words = [t.lower() for t in tokens(question)]
    own = [w for w in words if w not in STOPWORDS and w not in _ANAPHORA]
    leans = any(w in _ANAPHORA for w in words) or len(own) < 2
    if not leans:
        return question
    previous = next((q for q, _ in reversed(history) if q and q.strip()), "")
    return f"{previous.strip()} {question}".strip() if previous else question


class Retriever:
    """Hybrid retrieval: dense (Chroma) and keyword (BM25 over the catalog's FTS5 index), fused by reciprocal
    rank. Only chunks committed in the catalog are returned.

    `mode` is "hybrid" (default), "dense" or "keyword"; the last two exist to measure each side's share."""

    def __init__(self, embed_model: Any, vectors: VectorIndex, catalog: Catalog, mode: str = "hybrid",
                 rrf_k: int = 60) -> None:
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval mode is hybrid, dense or keyword, not {mode!r}")
        self.embed_model = embed_model
        self.vectors = vectors
        self.catalog = catalog
        self.mode = mode
        self.rrf_k = rrf_k

    def run(self, query: str, top_k: int, filters: Filters | None = None) -> list[Passage]:
        if not re.search(r"\w", query) or top_k <= 0:
            return []
        filters = filters or Filters()
        dense: list[str] = []
        keyword: list[str] = []
        if self.mode != "keyword":
            embedding = [float(x) for x in self.embed_model.encode([query])[0]]
            dense = self._dense(embedding, top_k * _OVERFETCH, filters)
        if self.mode != "dense":
            keyword = [cid for cid, _ in self.catalog.keyword_search(keyword_terms(query), top_k, filters.sources,
                                                                   filters.day_range())]
        chunks = self.catalog.chunks(dense + keyword)  # live chunks only: Chroma may hold uncommitted vectors
        ranked: dict[str, float] = {}
        for ids in (dense, keyword):  # reciprocal rank fusion over each list's live chunks
            for rank, cid in enumerate(c for c in ids if c in chunks):
                ranked[cid] = ranked.get(cid, 0.0) + 1.0 / (self.rrf_k + rank + 1)
        best = sorted(ranked, key=lambda c: -ranked[c])[:top_k]
        articles = self.catalog.articles(chunks[c].doc_id for c in best)
        passages = []
        for cid in best:
            chunk = chunks[cid]
            a = articles[chunk.doc_id]
            passages.append(
                Passage(doc_id=chunk.doc_id, chunk_id=chunk.id, text=chunk.text, start_char=chunk.start_char,
                        end_char=chunk.end_char, score=round(ranked[cid], 5), title=a.title, url=a.url,
                        source=a.source, published=a.published)
            )
        return passages

    def _dense(self, embedding: list[float], n: int, filters: Filters) -> list[str]:
        """The n nearest chunk ids that pass the filters, nearest first."""
        if not filters:
            return [cid for cid, _ in self.vectors.query(embedding, n)]
        near = [cid for cid, _ in self.vectors.query(embedding, max(n, _POSTFILTER_FETCH))]
        passed = self.catalog.admitted(near, filters.sources, filters.day_range())
        kept = [cid for cid in near if cid in passed]
        if len(kept) >= n:  # the same n Chroma's filtered search would give, among the live chunks
            return kept[:n]
        return [cid for cid, _ in self.vectors.query(embedding, n, where=filters.chroma_where())]


def keyword_terms(query: str) -> list[str]:
    """The words worth a keyword search: no stopwords, no one-letter tokens.

    >>> keyword_terms("Who requested the CSTO troops in 2022?")
    ['requested', 'CSTO', 'troops', '2022']
    """
    return [t for t in tokens(query) if t.lower() not in STOPWORDS and (len(t) > 1 or t.isdigit())]
