"""The lexical reader: sentences scored by the hand-fitted SentenceRanker (dense similarity, IDF coverage,
context, names, rank, answer type), p(answerable) from the logistic AbstentionModel. With the trained model
(`spans`; RAG_SHORT_ANSWERS=span, the default, or model), the model also reads the ranker's best `model_reads`
sentences and re-orders them by ranker score + `model_weight` x its answer logit. The short answer inside the
best sentence comes from the short-answer model (`short`, models/span: RAG_SHORT_ANSWERS=span), else from the
trained model's span head (model), else from the patterns of rag/reading/short.py (patterns: no model at all,
and the ranker's order)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from rag.reading import Reading, Relevance
from rag.reading.abstain import AbstentionModel, signals
from rag.reading.compose import RULES
from rag.reading.rerank import Candidate, SentenceRanker
from rag.reading.short import short_answer
from rag.reading.spans import SpanModel
from rag.reading.trained import span_text
from rag.types import Article, Passage


class SpanReader(Protocol):
    """What gives the short answer: (logit, start_char, end_char) inside each sentence (rag.reading.trained)."""

    def read_sentences(self, question: str, sentences: Sequence[Candidate], articles: Mapping[str, Article]
                       ) -> list[tuple[float, int, int]]: ...

    def clear_caches(self) -> None: ...


MIN_SUPPORT = 0.35  # fitted by `python -m evals.tune --reader lexical`
# The weight of the model's logit and the number of the ranker's best sentences it re-orders. Fitted by
# `python -m evals.tune --reader lexical` with the 9,000-question model (SQuAD tuning, best sentence right 0.795 ->
# 0.818, news unchanged; the fewest sentences within half a point of the best). With the 15,000-question model
# and the abstention reading the ranker's own scores, a larger weight answers a little more on the tuning split
# (0.3 over 2: SQuAD 0.792 -> 0.793 answered rightly, news 11 -> 12 of 16) but lets the model overrule the
# ranker's rules on the seed (a sentence that asks cited, the death-toll paraphrase answered with the police's
# toll, the next sentence no longer joining: tests/test_answers.py), from 0.05 on. Kept at 0.02.
MODEL_WEIGHT = 0.02
MODEL_READS = 2


class LexicalReader:
    name = "lexical"
    second_margin = 0.06
    next_margin = 0.2
    default_rules: tuple[str, ...] = RULES

    def __init__(self, ranker: SentenceRanker, abstention: AbstentionModel | None = None,
                 min_support: float | None = None, spans: SpanReader | None = None,
                 model_weight: float = MODEL_WEIGHT, model_reads: int = MODEL_READS,
                 short: SpanModel | None = None) -> None:
        self.ranker = ranker
        self.short = short  # the short-answer model; without it, the span head of `spans`, else the patterns
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
        own = ranked  # the sentences in the reader's order, each with the ranker's own score
        if self.spans is not None and self.model_weight > 0 and self.model_reads > 1:
            ranked, own = self._reorder(self.spans, text, ranked, articles)
        support = round(self._probability(text, own), 4)
        return Reading(tuple(ranked), support, self._short(question, text, ranked[0], articles), len(ranked),
                       self._relevance(text, own))

    def _probability(self, text: str, own: Sequence[Candidate]) -> float:
        """p(answerable) of the first of `own` as the best sentence, from the ranker's own scores: the abstention
        was fitted on them, and a sentence the model moved up leads the one after it by nothing (a re-based lead
        grows with the model's weight and reads as doubt: margin's coefficient is negative)."""
        values = signals(self.ranker.question_weights(text), text, own)
        values["margin"] = max(0.0, values["margin"])
        return self.abstention.probability(values)

    def _reorder(self, model: SpanReader, text: str, ranked: Sequence[Candidate], articles: Mapping[str, Article]
                 ) -> tuple[list[Candidate], list[Candidate]]:
        """The best `model_reads` sentences in the order of score + model_weight x the model's logit: (that order
        with scores re-based so the new first keeps the ranker's best score, gaps are the combined ones and every
        later sentence stays below them, as the answer's composition reads them; the same order with the
        ranker's own scores, as the abstention reads them)."""
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
        return out, [top[i] for i in order] + list(ranked[self.model_reads:])

    def _short(self, question: str, text: str, best: Candidate, articles: Mapping[str, Article]) -> str:
        if self.short is not None:
            start, end = self.short.span(text, best, articles)
        elif self.spans is not None:
            _, start, end = self.spans.read_sentences(text, [best], articles)[0]
        else:
            return short_answer(question, best.text)
        return span_text(best.text, start, end, text)

    def _relevance(self, text: str, ranked: Sequence[Candidate]) -> Relevance:
        """p(answerable) of any scored sentence as if it were the best one (`ranked`: the reader's order, the
        ranker's own scores). A span that is not one of the scored sentences takes the best of those it overlaps
        (0.0 if none)."""
        cache: dict[int, float] = {}

        def probability(i: int) -> float:
            if i not in cache:
                cache[i] = self._probability(text, [ranked[i], *ranked[:i], *ranked[i + 1:]])
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
        if self.short is not None:
            self.short.clear_caches()
