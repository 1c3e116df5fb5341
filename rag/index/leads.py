"""Article lead vectors: one transformer vector per article, of its title and opening words (`RAG_LEAD_VECTORS=on`).

With static chunk vectors (rag/index/static_embed.py) an index ingests about five times faster, but its dense list
finds the right news article less often than the transformer's. A news article says what it is about in its title
and first sentence, so one transformer vector of those per article (a chunk's cost once per article, not once per
chunk) is a third list in retrieval's fusion (rag/retrieve/hybrid.py), lifting the chunks of the articles it ranks
high. It is off by default: on held-out news it restored the transformer's right-article-first rate, but on the
SQuAD tuning questions (long encyclopedic articles, whose opening says little about most of their sections) every
weight of it lowered retrieval (README, "Speed, scale and deployment"). The vectors live in the catalog, written in
the same transaction as their article, so they are live, replaced and removed with it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.errors import ConfigError
from rag.index.catalog import Catalog
from rag.index.embed import TextEncoder
from rag.types import Article, Filters

if TYPE_CHECKING:
    import numpy as np

LEAD_CHARS = 200  # of the article's text after its title: about 40 word pieces of news English
LEAD_SETTINGS = ("off", "on")


def lead_text(article: Article, max_chars: int = LEAD_CHARS) -> str:
    """The title and the text's first `max_chars` characters, cut after a whole word.

    >>> lead_text(Article(id="a", title="Kazakhstan asks for troops", text="The president asked the CSTO for help."), 20)
    'Kazakhstan asks for troops\\nThe president asked'
    """
    text = article.text.lstrip()
    if len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars + 1)
        text = text[: cut if cut > 0 else max_chars]
    return f"{article.title}\n{text}".strip()


def leads_wanted(setting: str) -> bool:
    """Whether an index keeps lead vectors (`RAG_LEAD_VECTORS`, on or off)."""
    if setting not in LEAD_SETTINGS:
        raise ConfigError(f"lead_vectors must be one of {', '.join(LEAD_SETTINGS)}, got {setting!r}")
    return setting == "on"


def lead_bytes(vectors: np.ndarray) -> list[bytes]:
    """Each row as the bytes the catalog stores (float32)."""
    import numpy as np

    return [row.tobytes() for row in np.asarray(vectors, dtype=np.float32)]


@dataclass
class _Loaded:
    version: tuple[int, int]
    doc_ids: list[str]
    matrix: np.ndarray  # (articles, dimension) float32, unit rows
    sources: np.ndarray
    days: np.ndarray


class LeadRanker:
    """Articles ranked by the cosine of their lead vector with the question's transformer vector. The vectors are
    read from the catalog on first use and again whenever it holds different ones (another process ingested):
    4 bytes x 384 per article in memory, a matrix product per question."""

    def __init__(self, catalog: Catalog, encoder: TextEncoder) -> None:
        self.catalog = catalog
        self.encoder = encoder
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def rank(self, query: str, top_k: int, filters: Filters | None = None) -> dict[str, int]:
        """doc_id -> rank (0 best) of the top_k articles within the filters."""
        import numpy as np

        loaded = self._current()
        if top_k <= 0 or not loaded.doc_ids:
            return {}
        keep = np.ones(len(loaded.doc_ids), dtype=bool)
        if filters is not None and filters.sources:
            keep &= np.isin(loaded.sources, list(filters.sources))
        day_range = filters.day_range() if filters is not None else None
        if day_range is not None:
            keep &= (loaded.days >= day_range[0]) & (loaded.days <= day_range[1])
        candidates = np.flatnonzero(keep)
        if not len(candidates):
            return {}
        question = np.asarray(self.encoder.encode([query])[0], dtype=np.float32)
        similarity = (loaded.matrix @ question)[candidates]  # one product over all rows: no copy of the matrix
        n = min(top_k, len(candidates))
        best = np.argpartition(-similarity, n - 1)[:n]
        best = best[np.argsort(-similarity[best], kind="stable")]
        return {loaded.doc_ids[int(candidates[i])]: rank for rank, i in enumerate(best)}

    def _current(self) -> _Loaded:
        import numpy as np

        version = self.catalog.leads_version()
        with self._lock:
            if self._loaded is None or self._loaded.version != version:
                rows = self.catalog.lead_rows()
                dimension = self.encoder.dimension
                matrix = (np.frombuffer(b"".join(rows.vectors), dtype=np.float32).reshape(-1, dimension)
                          if rows.vectors else np.zeros((0, dimension), dtype=np.float32))
                self._loaded = _Loaded(version, rows.doc_ids, matrix, np.asarray(rows.sources, dtype=object),
                                       np.asarray(rows.days, dtype=np.int64))
            return self._loaded


def encode_leads(encoder: TextEncoder, articles: Sequence[Article]) -> list[bytes]:
    """The lead vectors of these articles, as catalog bytes."""
    if not articles:
        return []
    return lead_bytes(encoder.encode([lead_text(a) for a in articles]))
