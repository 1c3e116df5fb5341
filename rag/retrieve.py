"""Question (+ chat history) -> the top-k live passages from Chroma, with their articles' metadata."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rag.catalog import Catalog
from rag.lexical import STOPWORDS, tokens
from rag.store import VectorIndex
from rag.types import Passage

# Words that make a question lean on the previous turn ("did he", "that decision", "there").
_ANAPHORA = frozenset(
    "he she him her his hers they them their theirs it its this that these those there then such "
    "former latter same".split()
)
_OVERFETCH = 2  # Chroma may hold vectors of an interrupted ingest that the catalog does not serve


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
    """Dense retrieval from Chroma; only chunks committed in the catalog are returned."""

    def __init__(self, embed_model: Any, vectors: VectorIndex, catalog: Catalog) -> None:
        self.embed_model = embed_model
        self.vectors = vectors
        self.catalog = catalog

    def run(self, query: str, top_k: int, where: dict[str, Any] | None = None) -> list[Passage]:
        if not re.search(r"\w", query):
            return []
        embedding = self.embed_model.get_query_embedding(query)
        hits = self.vectors.query(embedding, top_k * _OVERFETCH, where=where)
        chunks = self.catalog.chunks(cid for cid, _ in hits)
        live = [(chunks[cid], score) for cid, score in hits if cid in chunks][:top_k]
        articles = self.catalog.articles(c.doc_id for c, _ in live)
        passages = []
        for chunk, score in live:
            a = articles[chunk.doc_id]
            passages.append(
                Passage(doc_id=chunk.doc_id, chunk_id=chunk.id, text=chunk.text, start_char=chunk.start_char,
                        end_char=chunk.end_char, score=round(score, 4), title=a.title, url=a.url,
                        source=a.source, published=a.published)
            )
        return passages
