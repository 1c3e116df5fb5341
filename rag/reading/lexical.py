"""The lexical reader: sentences scored by the hand-fitted SentenceRanker (dense similarity, IDF coverage,
context, names, rank, answer type), p(answerable) from the logistic AbstentionModel. With the trained model
(`spans`, RAG_SHORT_ANSWERS=model, the default), the model also reads the ranker's best `model_reads` sentences
and re-orders them by ranker score + `model_weight` x its answer logit, and its span head gives the short answer
inside the best sentence; without it, the ranker's order and the patterns of rag/reading/short.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from rag.reading import Reading, Relevance
from rag.reading.abstain import AbstentionModel, signals
from rag.reading.compose import RULES
from rag.reading.rerank import Candidate, SentenceRanker
from rag.reading.short import short_answer
from rag.reading.trained import span_text
from rag.types import Article, Passage


class SpanReader(Protocol):
    """What gives the short answer: (logit, start_char, end_char) inside each sentence (rag.reading.trained)."""

    def read_sentences(self, question: str, sentences: Sequence[Candidate], articles: Mapping[str, Article]
                       ) -> list[tuple[float, int, int]]: ...

    def clear_caches(self) -> None: ...


MIN_SUPPORT = 0.35  # fitted by `python -m evals.tune --reader lexical`
# Fitted by `python -m evals.tune --reader lexical`: the weight of the model's logit and the number of the
# ranker's best sentences it re-orders that put a gold sentence first most often on the tuning questions
# (SQuAD 0.795 -> 0.818, news unchanged; the fewest sentences within half a point of the best).
MODEL_WEIGHT = 0.02
MODEL_READS = 2


class LexicalReader:
    name = "lexical"
    second_margin = 0.06
    next_margin = 0.2
    default_rules: tuple[str, ...] = RULES

    def __init__(self, ranker: SentenceRanker, abstention: AbstentionModel | None = None,
                 min_support: float | None = None, spans: SpanReader | None = None,
                 model_weight: float = MODEL_WEIGHT, model_reads: int = MODEL_READS) -> None:
        self.ranker = ranker
        self.abstention = abstention or AbstentionModel()
        self.min_support = MIN_SUPPORT if min_support is None else min_support
        self.spans = spans
        self.model_weight = model_weight
        self.model_reads = model_reads

    def read(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
             query: str = "") -> Reading:
        ranked = self.ranker.score(question, passages, articles, query)
        text = query or question
        if not ranked:
            return Reading((), 0.0)
        if self.spans is not None and self.model_weight > 0 and self.model_reads > 1:
            ranked = self._reorder(self.spans, text, ranked, articles)
        support = round(self.abstention.probability(signals(self.ranker.question_weights(text), text, ranked)), 4)
        return Reading(tuple(ranked), support, self._short(question, text, ranked[0], articles), len(ranked),
                       self._relevance(text, ranked))

    def _reorder(self, model: SpanReader, text: str, ranked: Sequence[Candidate], articles: Mapping[str, Article]
                 ) -> list[Candidate]:
        """The best `model_reads` sentences in the order of score + model_weight x the model's logit. Scores are
        re-based so the new first keeps the ranker's best score (the abstention's signals stay in the range they
        were fitted on) and gaps are the combined ones; every later sentence stays below them."""
        top = list(ranked[: self.model_reads])
        logits = [r[0] for r in model.read_sentences(text, top, articles)]
        combined = [c.score + self.model_weight * z for c, z in zip(top, logits, strict=True)]
        shift = top[0].score - max(combined)
        order = sorted(range(len(top)), key=lambda i: -combined[i])
        out = [replace(top[i], score=round(combined[i] + shift, 4)) for i in order]
        ceiling = out[-1].score
        for c in ranked[self.model_reads:]:
            if c.score >= ceiling:
                c = replace(c, score=round(ceiling - 1e-3, 4))
            out.append(c)
            ceiling = c.score
        return out

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
