"""The lexical reader: sentences scored by the hand-fitted SentenceRanker (dense similarity, IDF coverage,
context, names, rank, answer type), p(answerable) from the logistic AbstentionModel. The short answer is the
trained reader's span head's inside the best sentence when `spans` is given (RAG_SHORT_ANSWERS=model, the
default), else the patterns of rag/short.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from rag.abstain import AbstentionModel, signals
from rag.answer import RULES
from rag.reading import Reading, Relevance
from rag.reading.trained import span_text
from rag.rerank import Candidate, SentenceRanker
from rag.short import short_answer
from rag.types import Article, Passage


class SpanReader(Protocol):
    """What gives the short answer: (logit, start_char, end_char) inside each sentence (rag.reading.trained)."""

    def read_sentences(self, question: str, sentences: Sequence[Candidate], articles: Mapping[str, Article]
                       ) -> list[tuple[float, int, int]]: ...

    def clear_caches(self) -> None: ...


MIN_SUPPORT = 0.35  # fitted by `python -m evals.tune --reader lexical`


class LexicalReader:
    name = "lexical"
    second_margin = 0.06
    next_margin = 0.2
    default_rules: tuple[str, ...] = RULES

    def __init__(self, ranker: SentenceRanker, abstention: AbstentionModel | None = None,
                 min_support: float | None = None, spans: SpanReader | None = None) -> None:
        self.ranker = ranker
        self.abstention = abstention or AbstentionModel()
        self.min_support = MIN_SUPPORT if min_support is None else min_support
        self.spans = spans

    def read(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
             query: str = "") -> Reading:
        ranked = self.ranker.score(question, passages, articles, query)
        text = query or question
        if not ranked:
            return Reading((), 0.0)
        support = round(self.abstention.probability(signals(self.ranker.question_weights(text), text, ranked)), 4)
        return Reading(tuple(ranked), support, self._short(question, text, ranked[0], articles), len(ranked),
                       self._relevance(text, ranked))

    def _short(self, question: str, text: str, best: Candidate, articles: Mapping[str, Article]) -> str:
        if self.spans is None:
            return short_answer(question, best.text)
        _, start, end = self.spans.read_sentences(text, [best], articles)[0]
        return span_text(best.text, start, end, text)

    def _relevance(self, text: str, ranked: Sequence[Candidate]) -> Relevance:
        """p(answerable) of any scored sentence as if it were the best one. A span that is not one of the scored
        sentences takes the best of those it overlaps (0.0 if none)."""
        weights = self.ranker.question_weights(text)
        cache: dict[int, float] = {}

        def probability(i: int) -> float:
            if i not in cache:
                values = signals(weights, text, [ranked[i], *ranked[:i], *ranked[i + 1:]])
                values["margin"] = max(0.0, values["margin"])  # a sentence behind the best leads nothing
                cache[i] = self.abstention.probability(values)
            return cache[i]

        def relevance(doc_id: str, start_char: int, end_char: int) -> float:
            overlapping = [i for i, c in enumerate(ranked)
                           if c.doc_id == doc_id and c.start_char < end_char and start_char < c.end_char]
            return max((probability(i) for i in overlapping), default=0.0)

        return relevance

    def clear_caches(self) -> None:
        self.ranker.clear_caches()
        if self.spans is not None:
            self.spans.clear_caches()
