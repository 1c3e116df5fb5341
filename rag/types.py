"""The typed records that flow through the pipeline: Article -> Chunk -> Passage -> Answer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """A cleaned article: only `text` is answerable; `comments` are kept apart and never cited."""

    id: str
    text: str
    title: str = ""
    source: str = ""
    published: str = ""  # ISO date (YYYY-MM-DD, YYYY-MM or YYYY) or ""
    url: str = ""
    authors: tuple[str, ...] = ()
    comments: tuple[str, ...] = ()
    path: str = ""  # the file it came from ("" for in-memory articles)
    published_source: str = ""  # where the date came from: metadata, url, page, text (ingest.dates)


@dataclass(frozen=True)
class Chunk:
    """A span of an article: `article.text[start_char:end_char] == text`."""

    id: str
    doc_id: str
    text: str
    start_char: int
    end_char: int
    index: int  # position of the chunk within its article


@dataclass(frozen=True)
class SourceRef:
    """Another article carrying the same text (a wire story republished): where else it can be read."""

    doc_id: str
    title: str = ""
    source: str = ""
    url: str = ""
    published: str = ""


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its article's metadata and a relevance score (higher is better)."""

    doc_id: str
    chunk_id: str
    text: str
    start_char: int
    end_char: int
    score: float
    title: str = ""
    url: str = ""
    source: str = ""
    published: str = ""
    duplicates: tuple[SourceRef, ...] = ()  # near-identical passages of other articles, collapsed into this one
    # The time prior of its article's date for the question (rag.retrieve.timeframe), relative to the freshest passage
    # retrieved with it: 0 for that one (and for an undated article), down to -1 five years or more further away.
    recency: float = 0.0


@dataclass(frozen=True)
class Citation:
    """An exact span of a cleaned article supporting part of an answer (`id` is the [n] marker)."""

    id: int
    doc_id: str
    quote: str
    start_char: int
    end_char: int
    title: str = ""
    url: str = ""
    source: str = ""
    published: str = ""
    also_in: tuple[SourceRef, ...] = ()  # the same text in other articles
    published_source: str = ""  # where the date came from: metadata, url, page, text


@dataclass(frozen=True)
class AnswerPiece:
    """A piece of an answer as it is streamed (`Assistant.ask_stream`): a sentence with its [n] markers and the
    numbers it cites, or a refusal. The pieces of an answer, joined, are its text."""

    text: str
    citations: tuple[int, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What `Assistant.ask` returns. `text` marks its claims with [n] matching `citations`."""

    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    short_answer: str = ""  # the phrase answering the question, when one was found
    support: float = 0.0  # p(the best sentence answers), rag/reading/abstain.py: answered when it reaches min_support
    # (1.0 for a generated answer: each of its sentences passed verification instead)
    backend: str = "extractive"  # what wrote the answer: "extractive", or the LLM backend (rag/llm.describe)
    fallback: str = ""  # why the extractive answer stands in for the configured LLM backend ("" if it does not)
    dropped: tuple[str, ...] = ()  # generated sentences left out because their citation did not support them
    period: str = ""  # the period the question pointed to, when it named one ("this week: articles of …")
    notice: str = ""  # a refusal's word to the user about their question (it is not in English: rag/text/language.py)


def published_day(published: str) -> int:
    """2022-01-07 -> 20220107 (a sortable number Chroma and the keyword index filter on); 2022 -> 20220000; '' -> 0.

    >>> [published_day(d) for d in ("2022-01-07", "2022-01", "2022", "")]
    [20220107, 20220100, 20220000, 0]
    """
    digits = published.replace("-", "")[:8]
    return int(digits.ljust(8, "0")) if digits.isdigit() else 0


def last_day(prefix: str) -> int:
    """The last day number an ISO date prefix covers, for an inclusive upper bound: 2022-01 -> 20220199.

    >>> [last_day(d) for d in ("2022-07-08", "2022-01", "2022")]
    [20220708, 20220199, 20229999]
    """
    return int(prefix.replace("-", "").ljust(8, "9"))


FIRST_YEAR, LAST_YEAR = 1800, 2200  # of a date a question is asked as of, or its articles are filtered by


def _check_date(prefix: str) -> None:
    """ValueError unless an ISO prefix names a real year, month or day within FIRST_YEAR..LAST_YEAR.

    >>> _check_date("2022-02-28"), _check_date("2022-07")
    (None, None)
    >>> _check_date("2022-02-30")
    Traceback (most recent call last):
    ValueError: 2022-02-30 is not a date (day is out of range for month)
    """
    import datetime

    parts = [int(p) for p in prefix.split("-")]
    if not FIRST_YEAR <= parts[0] <= LAST_YEAR:
        raise ValueError(f"{prefix}: dates from {FIRST_YEAR} to {LAST_YEAR} are understood")
    try:
        datetime.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError as exc:
        raise ValueError(f"{prefix} is not a date ({exc})") from None


@dataclass(frozen=True)
class Filters:
    """Restrict answers to some sources and/or a published date range (ISO prefixes: 2022, 2022-01, 2022-01-07;
    both ends inclusive). Articles without a date are left out when a date bound is set.

    `as_of` is the date the question is asked: articles published after it are not seen (undated ones are). A
    news quiz of 8 July 2022 asks about the news up to then, not about a later week's story on the same topic."""

    sources: tuple[str, ...] = ()
    published_from: str = ""
    published_to: str = ""
    as_of: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.sources, str):  # one source named, not a sequence of its letters
            object.__setattr__(self, "sources", (self.sources,) if self.sources else ())
        for bound in (self.published_from, self.published_to, self.as_of):
            if bound and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", bound):
                raise ValueError(f"dates are YYYY, YYYY-MM or YYYY-MM-DD, got {bound!r}")
            if bound:
                _check_date(bound)

    def __bool__(self) -> bool:
        return bool(self.sources or self.published_from or self.published_to or self.as_of)

    def day_range(self) -> tuple[int, int] | None:
        """Inclusive bounds as the sortable day numbers stored with each chunk (2022-01 -> 20220100..20220199;
        undated articles are day 0, so `as_of` alone keeps them).

        >>> Filters(published_from="2022-01", published_to="2022").day_range()
        (20220100, 20229999)
        >>> Filters(as_of="2022-07-08").day_range(), Filters(published_to="2022-06", as_of="2022-07-08").day_range()
        ((0, 20220708), (1, 20220699))
        """
        if not (self.published_from or self.published_to or self.as_of):
            return None
        low = published_day(self.published_from) if self.published_from else (1 if self.published_to else 0)
        high = last_day(self.published_to) if self.published_to else 99999999
        if self.as_of:
            high = min(high, last_day(self.as_of))
        return low, high

    def chroma_where(self) -> dict[str, Any] | None:
        """The same restriction as a Chroma `where` clause on the chunk metadata (the keys rag/index/store.py's
        FILTER_KEYS keeps)."""
        clauses: list[dict[str, Any]] = []
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        days = self.day_range()
        if days is not None:
            clauses += [{"published_day": {"$gte": days[0]}}, {"published_day": {"$lte": days[1]}}]
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class IngestReport:
    """Counts of one ingest run. Documents, not files: a JSONL file holds many."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    chunks: int = 0  # chunks written (embedded) by this run
    embedded: int = 0  # texts sent to the embedding model by this run
    seconds: float = 0.0
    # Per feed or page URL: its documents added, updated (content changed), unchanged, and its entries skipped.
    urls: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "chunks": self.chunks,
            "embedded": self.embedded,
            "seconds": round(self.seconds, 3),
            "urls": self.urls,
        }
