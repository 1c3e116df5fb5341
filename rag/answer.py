"""Extractive answering: pick the retrieved sentences that best answer the question, cite each, or abstain."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rag.cite import make_citation
from rag.lexical import answer_type, content_stems, has_type, tokens
from rag.sentences import sentence_spans
from rag.types import Answer, Article, Citation, Passage

REFUSAL = "The articles in the corpus don't say."

# Roles that a sentence may use instead of a name ("The President of Kazakhstan asked…").
_ROLE = (
    r"president|prime minister|premier|chancellor|minister|chairman|chairwoman|chair|governor|mayor|king|queen|"
    r"prince|emperor|leader|secretary(?:-general)?|ceo|chief executive|head|spokesman|spokeswoman|spokesperson|"
    r"commander|director|ambassador|speaker|pope|general"
)
_ROLE_REF_RE = re.compile(rf"\b(?:the|its|his|her|their|country's|country’s)\s+(?:[a-z]+\s+)?({_ROLE})\b", re.IGNORECASE)
_CACHE_SENTENCES = 20_000
# A sentence without what the question asks for (no number for "how many") can hardly answer it.
# "How many" with no number in the sentence disqualifies it outright.
_TYPE_PENALTY = {"number": 1.0, "date": 0.25, "person": 0.15, "place": 0.15}
_NAME = r"[A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+){0,3}"


class Answerer(Protocol):
    def run(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article]) -> Answer: ...


@dataclass(frozen=True)
class Candidate:
    doc_id: str
    start_char: int
    end_char: int
    text: str
    rank: int  # rank of the passage it came from
    score: float = 0.0


class ExtractiveAnswerer:
    """Scores each sentence of the retrieved passages against the question (embedding similarity, overlap
    of content words, the answer type the question asks for) and answers with the best one or two."""

    def __init__(self, embed_model: Any, min_support: float = 0.42, max_sentences: int = 2,
                 second_margin: float = 0.06) -> None:
        self.embed_model = embed_model
        self.min_support = min_support
        self.max_sentences = max_sentences
        self.second_margin = second_margin
        self._cache: dict[tuple[str, int, str], Any] = {}

    def score(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article]) -> list[Candidate]:
        """Every candidate sentence with its support score, best first."""
        seen: set[tuple[str, int]] = set()
        cands: list[Candidate] = []
        for rank, p in enumerate(passages):
            article = articles[p.doc_id]
            for start, end in sentence_spans(article.text, p.start_char, p.end_char):
                if (p.doc_id, start) in seen:
                    continue
                seen.add((p.doc_id, start))
                cands.append(Candidate(p.doc_id, start, end, article.text[start:end], rank))
        if not cands:
            return []
        dense = self._vectors(cands) @ self.embed_model.encode([question])[0]
        q_stems = set(content_stems(question))
        q_names = {t.lower() for t in tokens(question) if t[:1].isupper() or t[:1].isdigit()}
        kind = answer_type(question)
        scored = []
        for cand, sim in zip(cands, dense, strict=False):
            s_stems = set(content_stems(cand.text))
            overlap = len(q_stems & s_stems) / len(q_stems) if q_stems else 0.0
            s_lower = {t.lower() for t in tokens(cand.text)}
            names = len(q_names & s_lower) / len(q_names) if q_names else 0.0
            score = 0.55 * float(sim) + 0.35 * overlap + 0.10 * names - 0.01 * cand.rank
            if not has_type(cand.text, kind, question):
                score -= _TYPE_PENALTY[kind]
            scored.append(Candidate(cand.doc_id, cand.start_char, cand.end_char, cand.text, cand.rank, round(score, 4)))
        scored.sort(key=lambda c: -c.score)
        return scored

    def _vectors(self, cands: Sequence[Candidate]) -> Any:
        """Sentence vectors, from a bounded cache keyed by (doc_id, start, text)."""
        import numpy as np

        keys = [(c.doc_id, c.start_char, c.text) for c in cands]
        missing = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if missing:
            for key, vector in zip(missing, self.embed_model.encode([k[2] for k in missing]), strict=False):
                self._cache[key] = vector
            while len(self._cache) > _CACHE_SENTENCES:
                self._cache.pop(next(iter(self._cache)))
        return np.stack([self._cache[k] for k in keys])

    def run(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article]) -> Answer:
        ranked = self.score(question, passages, articles)
        if not ranked or ranked[0].score < self.min_support:
            return Answer(question=question, text=REFUSAL, abstained=True, passages=tuple(passages))
        best = ranked[0]
        chosen = [best]
        for cand in ranked[1 : self.max_sentences]:
            if cand.score >= max(self.min_support, best.score - self.second_margin) and cand.text != best.text:
                chosen.append(cand)
        chosen.sort(key=lambda c: (c.doc_id != best.doc_id, c.doc_id, c.start_char))
        short = ""
        if answer_type(question) == "person":
            named = _naming_sentence(best, articles[best.doc_id])
            if named is not None:
                cand, short = named
                if all(c.start_char != cand.start_char or c.doc_id != cand.doc_id for c in chosen):
                    chosen = [best, cand]
        citations: list[Citation] = []
        parts: list[str] = []
        for number, cand in enumerate(chosen, start=1):
            citations.append(make_citation(number, articles[cand.doc_id], cand.start_char, cand.end_char))
            parts.append(f"{cand.text} [{number}]")
        return Answer(question=question, text=" ".join(parts), abstained=False, citations=tuple(citations),
                      passages=tuple(passages), short_answer=short)


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

