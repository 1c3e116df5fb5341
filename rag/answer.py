"""Extractive answering: pick the retrieved sentences that best answer the question, cite each, or abstain."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from rag.abstain import AbstentionModel, signals
from rag.cite import make_citation
from rag.lexical import answer_type
from rag.rerank import Candidate, SentenceRanker
from rag.sentences import sentence_spans
from rag.short import short_answer
from rag.types import Answer, Article, Citation, Passage

REFUSAL = "The articles in the corpus don't say."

# Roles that a sentence may use instead of a name ("The President of Kazakhstan asked…").
_ROLE = (
    r"president|prime minister|premier|chancellor|minister|chairman|chairwoman|chair|governor|mayor|king|queen|"
    r"prince|emperor|leader|secretary(?:-general)?|ceo|chief executive|head|spokesman|spokeswoman|spokesperson|"
    r"commander|director|ambassador|speaker|pope|general"
)
_ROLE_REF_RE = re.compile(rf"\b(?:the|its|his|her|their|country's|country’s)\s+(?:[a-z]+\s+)?({_ROLE})\b", re.IGNORECASE)
_NAME = r"[A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+){0,3}"


class Answerer(Protocol):
    def run(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
            ranked: Sequence[Candidate] | None = None, query: str = "") -> Answer: ...


class ExtractiveAnswerer:
    """Answers with the best sentence (and a second one close behind it), each cited as an exact span, or
    abstains when the probability that the best sentence answers (`support`) is under `min_support`."""

    def __init__(self, ranker: SentenceRanker, min_support: float = 0.35, max_sentences: int = 2,
                 second_margin: float = 0.06, abstention: AbstentionModel | None = None) -> None:
        self.ranker = ranker
        self.abstention = abstention or AbstentionModel()
        self.min_support = min_support
        self.max_sentences = max_sentences
        self.second_margin = second_margin

    def run(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
            ranked: Sequence[Candidate] | None = None, query: str = "") -> Answer:
        """`ranked`: the sentences already scored by the ranker, to skip scoring them again; `query`: the
        question made standalone, for a follow-up (see SentenceRanker.score)."""
        if ranked is None:
            ranked = self.ranker.score(question, passages, articles, query)
        text = query or question
        support = round(self.abstention.probability(
            signals(self.ranker.question_weights(text), text, ranked)), 4) if ranked else 0.0
        if not ranked or support < self.min_support:
            return Answer(question=question, text=REFUSAL, abstained=True, passages=tuple(passages), support=support)
        best = ranked[0]
        chosen = [best]
        for cand in ranked[1 : self.max_sentences]:
            if cand.score >= best.score - self.second_margin and cand.text != best.text:
                chosen.append(cand)
        chosen.sort(key=lambda c: (c.doc_id != best.doc_id, c.doc_id, c.start_char))
        short = short_answer(question, best.text)
        if answer_type(question) == "person":
            named = _naming_sentence(best, articles[best.doc_id])
            if named is not None:
                cand, short = named
                if all(c.start_char != cand.start_char or c.doc_id != cand.doc_id for c in chosen):
                    chosen = [best, cand]
        citations: list[Citation] = []
        parts: list[str] = []
        for number, cand in enumerate(chosen, start=1):
            also_in = next((p.duplicates for p in passages
                            if p.doc_id == cand.doc_id and p.start_char <= cand.start_char < p.end_char), ())
            citations.append(make_citation(number, articles[cand.doc_id], cand.start_char, cand.end_char, also_in))
            parts.append(f"{cand.text} [{number}]")
        return Answer(question=question, text=" ".join(parts), abstained=False, citations=tuple(citations),
                      passages=tuple(passages), short_answer=short, support=support)


def _naming_sentence(best: Candidate, article: Article) -> tuple[Candidate, str] | None:
    """When `best` refers to someone by role ("the President of Kazakhstan"), the article's sentence
    that gives that role holder's name ("President Kassym-Zhomart Tokayev"), and the name."""
    ref = _ROLE_REF_RE.search(best.text)
    if not ref or re.match(rf"\s+{_NAME}", best.text[ref.end() :]):
        return None  # no role, or the role is followed by its holder's name already
    role = ref.group(1)
    patterns = [
        re.compile(rf"\b(?i:{role})\s+({_NAME})"),  # President Kassym-Zhomart Tokayev
        re.compile(rf"({_NAME}),\s+(?i:(?:the\s+)?(?:\w+\s+)?{role})\b"),  # Tokayev, the incumbent president
    ]
    spans = sentence_spans(article.text)
    # Prefer the naming sentence closest before the cited one, then after it.
    ordered = sorted(spans, key=lambda s: (s[0] > best.start_char, abs(s[0] - best.start_char)))
    for start, end in ordered:
        if start == best.start_char:
            continue
        text = article.text[start:end]
        for pattern in patterns:
            m = pattern.search(text)
            if m and m.group(1)[:1].isupper():
                return Candidate(best.doc_id, start, end, text, best.rank), m.group(1)
    return None

