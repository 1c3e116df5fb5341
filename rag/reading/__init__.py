"""Reading: the step between retrieval and the answer. A `Reader` takes the question and the retrieved passages
(with their articles), scores their sentences, estimates p(answerable) and finds the short answer.

Two readers implement it:
- `lexical` (the default, rag/reading/lexical.py): the hand-fitted sentence ranker and logistic abstention,
  the trained model re-ordering its best three sentences;
- `trained` (rag/reading/trained.py): the cross-encoder trained on SQuAD 1.1 (models/reader) chooses the
  sentence and decides refusals.
`RAG_READER=lexical|trained` picks one; `rag.assistant.make_reader(settings, ranker)` builds it. Either takes
its short answer from the span head of models/reader by default, or from a second short-answer model
(RAG_SPAN_MODEL, rag/reading/spans.py; models/span, the model the reader was trained from).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rag.reading.rerank import Candidate
from rag.retrieve.timeframe import TimeFrame
from rag.types import Article, Passage

Relevance = Callable[[str, int, int], float]  # (doc_id, start_char, end_char) -> p(that sentence answers)
# sentences -> (the short answer in each, "" for none; its span score), from the model that gives short answers
SpanChoice = Callable[[Sequence[Candidate]], list[tuple[str, float]]]


@dataclass(frozen=True)
class Reading:
    """What a reader made of the passages: their sentences best first (`Candidate.score` is the reader's
    score), p(the best sentence answers) as `support`, and the short answer inside the best sentence (`spans`
    finds it in others)."""

    sentences: tuple[Candidate, ...]
    support: float
    short_answer: str = ""
    read: int = 0  # sentences the model read (trained reader); all scored ones for the lexical reader
    relevance: Relevance | None = field(default=None, compare=False, repr=False)
    # The short-answer model over any sentences (the answer's cited ones: rag/reading/compose.py); None without one
    spans: SpanChoice | None = field(default=None, compare=False, repr=False)

    @property
    def best(self) -> Candidate | None:
        return self.sentences[0] if self.sentences else None


class Reader(Protocol):
    """Scores the sentences of the passages for the question. `query` is the question made standalone (a
    follow-up with the previous question): its words are matched; the kind of answer comes from `question`."""

    name: str
    min_support: float  # answers below this support are refusals (fitted per reader on the tuning split)
    second_margin: float  # a second sentence joins the answer when it scores within this of the best
    next_margin: float  # the sentence right after the best joins within this (the "next" rule)
    default_rules: tuple[str, ...]  # the composition rules of rag/reading/compose.py this reader is measured with

    def read(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
             query: str = "") -> Reading: ...

    def clear_caches(self) -> None: ...

    def close(self) -> None: ...  # threads it started, if any


@dataclass(frozen=True)
class Retrieval:
    """One question's retrieval and reading: the candidate pool (near-duplicates collapsed), the top_k passages
    re-ranked by their best sentence, the articles they come from, and the reader's Reading of the pool.
    `query` is the question made standalone (a follow-up with the previous question); `frame` the period it
    points to (None with the time prior off)."""

    question: str
    query: str
    pool: tuple[Passage, ...]
    top: tuple[Passage, ...]
    articles: Mapping[str, Article]
    reading: Reading
    frame: TimeFrame | None = None
