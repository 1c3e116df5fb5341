"""The lexical reader: sentences scored by the hand-fitted SentenceRanker (dense similarity, IDF coverage,
context, names, rank, answer type), p(answerable) from the logistic AbstentionModel. With the trained model
(RAG_SHORT_ANSWERS=span, the default, or model), the ranker's best `model_reads` sentences are read by the
reader's model (`spans`, models/reader) and re-ordered by ranker score + `model_weight` x its answer logit +
`span_weight` x the best-span score of `short`: the same model's span head by default, or a second model's
(RAG_SPAN_MODEL, e.g. models/span), which then reads the same sentences side by side. The short answer inside the
best sentence comes from that span head (span), else from the reader model's span head without the re-ordering
(model), else from the patterns of rag/reading/short.py (patterns: no model at all, and the ranker's order)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol

from rag.reading import Reading, Relevance
from rag.reading.abstain import AbstentionModel, signals
from rag.reading.compose import RULES
from rag.reading.rerank import FEATURES, Candidate, SentenceRanker
from rag.reading.short import short_answer
from rag.reading.trained import SentenceReader, span_choice
from rag.types import Article, Passage


class SpanReader(SentenceReader, Protocol):
    """What reads the sentences: a PairReading of each (rag.reading.trained.PairModel)."""

    def clear_caches(self) -> None: ...


# The weights of the reader model's answer logit and of the span head's best-span score, the number of the ranker's
# best sentences they re-order, and the refusal threshold: fitted by `python -m evals.tune --reader lexical` on the
# SQuAD 2.0 tuning split and RealTime QA's 2023 weeks counted alike (CHANGELOG.md has the figures). The logit's
# weight stays at 0.02: from 0.05 on it lets the model overrule the ranker's rules on the seed (tests/test_answers.py).
MIN_SUPPORT = 0.35
MODEL_WEIGHT = 0.02
SPAN_WEIGHT = 0.1
MODEL_READS = 6
# The two models read the same sentences at once, each on half the cores (at most 4 in all): on 2 cores, the two
# models over 3 sentences 40 ms one after the other on 2 threads each, 34 ms side by side on 1 thread each (2 on
# 2 each: 38 ms; a scratch timing of 150 runs each, 2026-12-06).
PAIR_THREADS = max(1, min(4, os.cpu_count() or 1) // 2)


def _recency(sentence: Candidate) -> float:
    """The time prior of the sentence's passage (0 for the period asked, below for older; 0 without features)."""
    return sentence.features[FEATURES.index("recency")] if sentence.features else 0.0


class LexicalReader:
    name = "lexical"
    second_margin = 0.06
    next_margin = 0.2
    default_rules: tuple[str, ...] = RULES

    def __init__(self, ranker: SentenceRanker, abstention: AbstentionModel | None = None,
                 min_support: float | None = None, spans: SpanReader | None = None,
                 model_weight: float = MODEL_WEIGHT, model_reads: int = MODEL_READS,
                 short: SpanReader | None = None, span_weight: float = SPAN_WEIGHT) -> None:
        self.ranker = ranker
        # The model whose span head gives the short answer and the span score: `spans` itself (the reader model's
        # own head, the default) or a second model (models/span); without it, `spans`' head, else the patterns.
        self.short = short
        self.abstention = abstention or AbstentionModel()
        self.min_support = MIN_SUPPORT if min_support is None else min_support
        self.spans = spans
        self.model_weight = model_weight
        self.span_weight = span_weight if short is not None else 0.0
        self.model_reads = model_reads
        # A second short-answer model reads on this thread while the reader's model reads on the caller's (the thread
        # starts on first use; with one model it never does).
        self._short_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="short-answer-model")

    def read(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
             query: str = "") -> Reading:
        ranked = self.ranker.score(question, passages, articles, query)
        text = query or question
        if not ranked:
            return Reading((), 0.0)
        own = ranked  # the sentences in the reader's order, each with the ranker's own score
        if self.spans is not None and self.model_reads > 1 and (self.model_weight > 0 or self.span_weight > 0):
            ranked, own = self._reorder(self.spans, text, ranked, articles)
        support = round(self._probability(text, own), 4)
        model = self.short or self.spans  # the model the short answer comes from, if any
        spans = span_choice(model, text, articles) if model else None
        # The short answer in the best sentence: the span head of `short` (the reader model's own, or a second
        # model's), else the reader model's span head, else the patterns of rag/reading/short.py.
        short = spans([ranked[0]])[0][0] if spans else short_answer(question, ranked[0].text)
        return Reading(tuple(ranked), support, short, len(ranked), self._relevance(text, own), spans)

    def _probability(self, text: str, own: Sequence[Candidate]) -> float:
        """p(answerable) of the first of `own` as the best sentence, from the ranker's own scores: the abstention
        was fitted on them, and a sentence the model moved up leads the one after it by nothing (a re-based lead
        grows with the model's weight and reads as doubt: margin's coefficient is negative)."""
        values = signals(self.ranker.question_weights(text), text, own)
        values["margin"] = max(0.0, values["margin"])
        return self.abstention.probability(values)

    def _reorder(self, model: SpanReader, text: str, ranked: Sequence[Candidate], articles: Mapping[str, Article]
                 ) -> tuple[list[Candidate], list[Candidate]]:
        """The best `model_reads` sentences in the order of score + model_weight x the model's logit + span_weight x
        the best-span score of `short` (this model's own span head, or a second model's): that order with scores
        re-based so the new first keeps the ranker's best score, gaps are the combined ones and every later sentence
        stays below them, as the answer's composition reads them; and the same order with the ranker's own scores,
        as the abstention reads them."""
        top = list(ranked[: self.model_reads])
        # A second short-answer model reads the same sentences beside the reader's; one model's read serves both.
        second = self.short if self.short is not model and self.span_weight > 0 else None
        reading_spans = (self._short_worker.submit(second.read_sentences, text, top, articles)
                         if second is not None else None)
        readings = model.read_sentences(text, top, articles)
        combined = [c.score + self.model_weight * r.logit for c, r in zip(top, readings, strict=True)]
        by_model = sorted(range(len(top)), key=lambda i: -combined[i])
        order_by = combined
        if self.short is not None and self.span_weight > 0:
            # Only sentences at least as recent (time prior, rag/retrieve/timeframe.py) as the best without it get the
            # span score: the same story told each year differs in the name the span finds, not in how well it
            # answers, and an older one must not overtake the newer (tests/test_time.py). Undated corpora: no effect.
            spans = reading_spans.result() if reading_spans is not None else readings  # one model: its own span
            recency = [_recency(c) for c in top]
            newest = recency[by_model[0]]
            order_by = [z + (self.span_weight * r.span_score if at >= newest else 0.0)
                        for z, r, at in zip(combined, spans, recency, strict=True)]
        order = sorted(range(len(top)), key=lambda i: -order_by[i])
        # The span score orders but does not widen the gaps: the new order takes the combined scores best first,
        # so a second sentence joins the answer under the margins it was fitted with.
        shift = top[0].score - combined[by_model[0]]
        out = [replace(top[i], score=round(combined[j] + shift, 4)) for i, j in zip(order, by_model, strict=True)]
        ceiling = out[-1].score
        for c in ranked[self.model_reads:]:
            if c.score >= ceiling:
                c = replace(c, score=round(ceiling - 1e-3, 4))
            out.append(c)
            ceiling = c.score
        # The abstention reads the order without the span score: a sentence the span model moves up has the lower
        # ranker score, and read as the best it refused answerable questions (SQuAD tuning over-refusal 0.053 ->
        # 0.065, and a name the span model found in the neighbouring sentence refused: tests/test_answers.py).
        return out, [top[i] for i in by_model] + list(ranked[self.model_reads:])

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

    def close(self) -> None:
        """Stop the short-answer model's thread (after a reading in flight)."""
        self._short_worker.shutdown(wait=True)
