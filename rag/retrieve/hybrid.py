"""Question (+ chat history) -> the top-k live passages: dense (Chroma) and BM25 (catalog FTS5), fused; with
article lead vectors (rag/index/leads.py), the articles ranked by them as a third list."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Protocol

from rag.config import RETRIEVAL_MODES
from rag.index.catalog import Catalog
from rag.index.leads import LeadRanker
from rag.index.store import VectorIndex
from rag.retrieve.timeframe import TimeFrame
from rag.text.sentences import sentence_spans
from rag.text.words import STOPWORDS, tokens
from rag.types import Article, Filters, Passage

# Words that make a question lean on the previous turn ("did he", "that decision", "there").
_ANAPHORA = frozenset(
    "he she him her his hers they them their theirs it its this that these those there then such "
    "former latter same".split()
)
_TIME_DEICTIC = re.compile(r"\b(?:this|that|these|those)\s+(?:week|weekend|month|year|morning|afternoon|evening|night|"
                           r"summer|winter|spring|autumn|fall|season|time)s?\b", re.IGNORECASE)
MAX_FOLLOW_UP_TURNS = 3  # the questions a follow-up's query may reach back over, itself included
_OVERFETCH = 2  # Chroma may hold vectors of an interrupted ingest that the catalog does not serve
# With filters, this many (or twice the chunks wanted, if more) unfiltered nearest chunks are checked against
# them first: Chroma's filtered search scans the metadata (65 ms on a 13k-chunk index, against 2 ms unfiltered),
# and most filters (a date cut, a big source) keep most chunks. Only when too few of them pass is Chroma asked
# to filter.
_POSTFILTER_FETCH = 64
# With a time frame, each list is fetched this many times deeper, so that the recency prior can lift an article
# of the question's week over older ones on the same topic.
TIME_FETCH = 4
# The recency prior's weight in the fused score (reciprocal-rank units: rank 0 is worth 1/61, rank 10 1/71):
# fitted by `python -m evals.tune_time` on RealTime QA's 2023 weeks (0.016 and 0.064 measured no better).
RECENCY_RRF_WEIGHT = 0.032
# The article-lead list's weight (rag/index/leads.py), as the other two lists': chosen before measuring. On the
# SQuAD tuning questions every weight lowered retrieval, and RealTime QA's June ones did not move
# (`python -m evals.tune_leads`), so the list is off unless RAG_LEAD_VECTORS=on.
LEAD_RRF_WEIGHT = 1.0


def standalone_query(question: str, history: Sequence[tuple[str, str]] = (), max_turns: int = MAX_FOLLOW_UP_TURNS
                     ) -> str:
    """The text to retrieve with: the question itself, or, for a follow-up that leans on the
    conversation (a pronoun, or too few words of its own), the previous question made standalone the same way
    and prepended (so a follow-up of a follow-up keeps the topic), over at most `max_turns` questions.

    >>> standalone_query("On which channel did he speak?", [("Who is Ruslan Osipenko?", "An expert.")])
    'Who is Ruslan Osipenko? On which channel did he speak?'
    >>> standalone_query("Who requested CSTO troops?", [("Who is Ruslan Osipenko?", "An expert.")])
    'Who requested CSTO troops?'
    >>> standalone_query("What did Biden say about it?", [("What did the court rule?", "."), ("Who wrote it?", ".")])
    'What did the court rule? Who wrote it? What did Biden say about it?'
    """
    question = question.strip()
    if not history or max_turns <= 1 or not _leans(question):
        return question
    turns = [(q, a) for q, a in history if q and q.strip()]
    if not turns:
        return question
    previous = standalone_query(turns[-1][0], turns[:-1], max_turns - 1)
    return f"{previous} {question}"


def _leans(question: str) -> bool:
    """Whether a question leans on the conversation: a pronoun, or fewer than two words of its own. "this week"
    and the like name a time, not something said before.

    >>> _leans("What did he say?"), _leans("What did the court rule this week?"), _leans("Why?")
    (True, False, True)
    """
    words = [t.lower() for t in tokens(_TIME_DEICTIC.sub(" ", question))]
    own = [w for w in words if w not in STOPWORDS and w not in _ANAPHORA]
    return any(w in _ANAPHORA for w in words) or len(own) < 2


class PassageRetriever(Protocol):
    """What the Assistant retrieves with: the `top_k` best passages for a (standalone) query, within `filters`;
    `frame` is the period the question points to (rag.retrieve.timeframe), for a retriever that weighs dates. Passages
    must be spans of articles in the index's catalog (the reader and the citations read them there)."""

    def run(self, query: str, top_k: int, filters: Filters | None = None, frame: TimeFrame | None = None
            ) -> list[Passage]: ...


class Retriever:
    """Hybrid retrieval: dense (Chroma) and keyword (BM25 over the catalog's FTS5 index), fused by reciprocal
    rank. Only chunks committed in the catalog are returned.

    `mode` is "hybrid" (default), "dense" or "keyword"; the last two exist to measure each side's share."""

    def __init__(self, embed_model: Any, vectors: VectorIndex, catalog: Catalog, mode: str = "hybrid",
                 rrf_k: int = 60, recency_weight: float = RECENCY_RRF_WEIGHT, leads: LeadRanker | None = None,
                 lead_weight: float = LEAD_RRF_WEIGHT) -> None:
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval mode is hybrid, dense or keyword, not {mode!r}")
        self.embed_model = embed_model
        self.vectors = vectors
        self.catalog = catalog
        self.mode = mode
        self.rrf_k = rrf_k
        self.recency_weight = recency_weight
        self.leads = leads
        self.lead_weight = lead_weight
        # Threads start on the first search (ThreadPoolExecutor starts them as work arrives); two, so that two
        # questions served at once (the page's sessions) do not queue behind each other's keyword search.
        self._keyword_worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyword-search")

    def run(self, query: str, top_k: int, filters: Filters | None = None, frame: TimeFrame | None = None
            ) -> list[Passage]:
        """The top_k passages; with a time frame, fused scores gain `recency_weight` x each article's recency
        prior, and each passage carries its prior relative to the freshest one returned (`Passage.recency`)."""
        if not re.search(r"\w", query) or top_k <= 0:
            return []
        filters = filters or Filters()
        if filters and not self.catalog.admits_any(filters.sources, filters.day_range()):
            return []  # no article passes: Chroma's filtered search would scan every chunk's metadata to find none
        depth = top_k * (TIME_FETCH if frame is not None and frame.leans else 1)
        dense: list[str] = []
        keyword: list[str] = []
        # The keyword search (SQLite, which lets go of the GIL while it runs: tens of ms at 100k chunks) runs on a
        # worker thread while the question is embedded and Chroma searched.
        searching = (self._keyword_worker.submit(self.catalog.keyword_search, keyword_terms(query), depth,
                                           filters.sources, filters.day_range()) if self.mode != "dense" else None)
        if self.mode != "keyword":
            embedding = [float(x) for x in self.embed_model.encode([query])[0]]
            dense = self._dense(embedding, depth * _OVERFETCH, filters)
        if searching is not None:
            keyword = [cid for cid, _ in searching.result()]
        chunks = self.catalog.chunks(dense + keyword)  # live chunks only: Chroma may hold uncommitted vectors
        dates = self.catalog.published(c.doc_id for c in chunks.values())
        if not any(dates.values()):  # nothing dated, nothing for the prior to do: the lists as without a frame
            dense, keyword = dense[: top_k * _OVERFETCH], keyword[:top_k]
        ranked: dict[str, float] = {}
        for ids in (dense, keyword):  # reciprocal rank fusion over each list's live chunks
            for rank, cid in enumerate(c for c in ids if c in chunks):
                ranked[cid] = ranked.get(cid, 0.0) + 1.0 / (self.rrf_k + rank + 1)
        if self.leads is not None and self.mode != "keyword":  # articles by their lead: each lifts its chunks
            articles_ranked = self.leads.rank(query, depth * _OVERFETCH, filters)
            for cid in ranked:
                article_rank = articles_ranked.get(chunks[cid].doc_id)
                if article_rank is not None:
                    ranked[cid] += self.lead_weight / (self.rrf_k + article_rank + 1)
        prior = _priors(frame, {c: dates[chunks[c].doc_id] for c in ranked})
        fused = {c: ranked[c] + self.recency_weight * prior[c] for c in ranked}
        best = sorted(fused, key=lambda c: -fused[c])[:top_k]
        freshest = max((prior[c] for c in best), default=0.0)
        articles = self.catalog.articles(chunks[c].doc_id for c in best)
        passages = []
        for cid in best:
            chunk = chunks[cid]
            a = articles[chunk.doc_id]
            passages.append(
                Passage(doc_id=chunk.doc_id, chunk_id=chunk.id, text=chunk.text, start_char=chunk.start_char,
                        end_char=chunk.end_char, score=round(fused[cid], 5), title=a.title, url=a.url,
                        source=a.source, published=a.published, recency=round(prior[cid] - freshest, 4))
            )
        return passages

    def close(self) -> None:
        """Stop the keyword-search threads (after a search in flight)."""
        self._keyword_worker.shutdown(wait=True)

    def _dense(self, embedding: list[float], n: int, filters: Filters) -> list[str]:
        """The n nearest chunk ids that pass the filters, nearest first."""
        if not filters:
            return [cid for cid, _ in self.vectors.query(embedding, n)]
        near = [cid for cid, _ in self.vectors.query(embedding, max(2 * n, _POSTFILTER_FETCH))]
        passed = self.catalog.admitted(near, filters.sources, filters.day_range())
        kept = [cid for cid in near if cid in passed]
        if len(kept) >= n:  # the same n Chroma's filtered search would give, among the live chunks
            return kept[:n]
        return [cid for cid, _ in self.vectors.query(embedding, n, where=filters.chroma_where())]


def _priors(frame: TimeFrame | None, published: dict[str, str]) -> dict[str, float]:
    """Each chunk's recency prior under the frame; an undated article's is the freshest dated one's (no date is
    no evidence either way), and every prior is 0 without a frame."""
    if frame is None:
        return dict.fromkeys(published, 0.0)
    dated = {c: frame.recency(p) for c, p in published.items()}
    neutral = max((v for v in dated.values() if v is not None), default=0.0)
    return {c: neutral if v is None else v for c, v in dated.items()}


# A word of letters and digits ("Town7", "G7", "MH17"), which the keyword index holds whole.
_LETTERS_AND_DIGITS = re.compile(r"\b(?=[^\W_]*[^\W\d_])(?=[^\W_]*\d)[^\W_]+\b")


def keyword_terms(query: str) -> list[str]:
    """The words worth a keyword search: no stopwords, no one-letter tokens; a word of letters and digits both
    whole and as its parts.

    >>> keyword_terms("Who requested the CSTO troops in 2022?")
    ['requested', 'CSTO', 'troops', '2022']
    >>> keyword_terms("How many boats did Town7 count after the G7 summit?")
    ['boats', 'Town7', 'Town', '7', 'count', 'G7', 'summit']
    """
    terms: list[str] = []
    for word in query.split():
        whole = _LETTERS_AND_DIGITS.findall(word)
        parts = [t for t in tokens(word) if t.lower() not in STOPWORDS and (len(t) > 1 or t.isdigit())]
        terms += [w for w in whole if w not in parts] + parts
    return list(dict.fromkeys(terms))


def widen_passages(passages: Sequence[Passage], articles: Mapping[str, Article], context_chars: int,
                   limit: int | None = None) -> list[Passage]:
    """Each passage with the whole sentences of its article within `context_chars` before and after it, so
    that the answer next to a retrieved chunk is read too; passages of one article that then overlap or touch
    become one, at the first one's rank (its score the best of them). `limit`: stop after that many passages.
    0 characters: the passages as they are."""
    if context_chars <= 0:
        return list(passages)[:limit]
    out: list[Passage] = []
    for p in passages:
        if limit is not None and len(out) >= limit:
            break
        text = articles[p.doc_id].text
        start, end = _context(text, p.start_char, p.end_char, context_chars)
        touching = [i for i, q in enumerate(out)
                    if q.doc_id == p.doc_id and start <= q.end_char + 1 and q.start_char <= end + 1]
        if not touching:
            out.append(replace(p, start_char=start, end_char=end, text=text[start:end]))
            continue
        first = out[touching[0]]  # every passage it touches becomes one, at the best rank among them
        start = min([start] + [out[i].start_char for i in touching])
        end = max([end] + [out[i].end_char for i in touching])
        score = max([p.score] + [out[i].score for i in touching])
        out[touching[0]] = replace(first, start_char=start, end_char=end, text=text[start:end], score=score)
        out = [q for i, q in enumerate(out) if i not in touching[1:]]
    return out


def _context(text: str, start_char: int, end_char: int, chars: int) -> tuple[int, int]:
    """The span widened by the whole sentences within `chars` on each side. Only the text around it is split:
    a sentence cut by that window's edge (its first and last) is not whole, so it is not taken."""
    low, high = max(0, start_char - chars - _SPLIT_MARGIN), min(len(text), end_char + chars + _SPLIT_MARGIN)
    spans = sentence_spans(text, low, high)
    whole = spans[1 if low > 0 else 0: len(spans) - 1 if high < len(text) else len(spans)]
    start = min([start_char] + [s for s, e in whole if start_char - chars <= s and e <= start_char])
    end = max([end_char] + [e for s, e in whole if end_char <= s and e <= end_char + chars])
    return start, end


_SPLIT_MARGIN = 400  # characters split beyond the window, so that its edge sentences are found whole
