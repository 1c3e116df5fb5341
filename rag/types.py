"""The typed records that flow through the pipeline: Article -> Chunk -> Passage -> Answer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """A cleaned article: only `text` is answerable; `comments` are kept apart and never cited."""

    id: str
    text: str
    title: str = ""
    source: str = ""
    published: str = ""  # ISO date (YYYY-MM-DD or YYYY) or ""
    url: str = ""
    authors: tuple[str, ...] = ()
    comments: tuple[str, ...] = ()
    path: str = ""  # the file it came from ("" for in-memory articles)


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
        }
