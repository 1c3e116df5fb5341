"""When not to answer: the probability that the best sentence really answers the question, from a small
logistic model over what the ranker saw. An answer is given only when it reaches `min_support`.

Signals: the best sentence's score and its dense / coverage / context parts, its lead over the runner-up,
the rarest question word that neither the sentence nor its context contains (an unanswerable question
usually hinges on one: a name, a year, a qualifier), a question number missing from them (both only over the
sentence that asks, when the question sets the scene first), whether the sentence holds the kind of thing asked
for, and whether it has the opposite of a word the question asks with, or another year, in its place ("the
*lowest* quotient" against "the *highest* quotient": `rag.text.words.swapped`). The coefficients are fitted by
`evals/tune.py` on SQuAD 2.0 questions (answerable against unanswerable) outside the evaluation sample.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from rag.reading.rerank import FEATURES, Candidate
from rag.text.words import asking_part, stem, swapped, tokens

_NUMBER = re.compile(r"\d[\d.,]*")
SIGNALS = ("score", "dense", "coverage", "context", "margin", "missing_rare", "missing_number", "type", "swapped")
# Fitted by `python -m evals.tune` on 600 answerable + 300 unanswerable SQuAD 2.0 questions outside the
# evaluation sample, RealTime QA's June questions and the even half of MultiHop-RAG's against the 2022 news
# pages (standardised inputs, folded back into coefficients of the raw signals).
DEFAULT_COEFFICIENTS: dict[str, float] = {
    "bias": -5.1682, "score": 1.2795, "dense": 3.531, "coverage": 0.8375, "context": 1.674, "margin": -1.0069,
    "missing_rare": 0.5366, "missing_number": -1.3772, "type": 0.553, "swapped": -3.1779,
}


def signals(question_weights: Mapping[str, float], question: str, ranked: Sequence[Candidate]) -> dict[str, float]:
    """The abstention signals of a question's scored sentences (best first)."""
    if not ranked:
        return dict.fromkeys(SIGNALS, 0.0)
    best = ranked[0]
    words = tokens(f"{best.context} {best.text}")
    seen = {stem(t) for t in words}
    top = max(question_weights.values(), default=0.0) or 1.0
    asking = asking_part(question)
    asked = {stem(t) for t in tokens(asking)}
    missing = [w for s, w in question_weights.items() if s not in seen and s in asked]
    numbers = {t for t in tokens(asking) if _NUMBER.fullmatch(t)}
    text_numbers = {t for t in words if _NUMBER.fullmatch(t)}
    f = dict(zip(FEATURES, best.features, strict=False))
    return {
        "score": best.score,
        "dense": f.get("dense", 0.0),
        "coverage": f.get("coverage", 0.0),
        "context": f.get("context", 0.0),
        "margin": best.score - ranked[1].score if len(ranked) > 1 else best.score,
        "missing_rare": max(missing, default=0.0) / top,
        "missing_number": 1.0 if numbers - text_numbers else 0.0,
        "type": f.get("type", 1.0),
        "swapped": 1.0 if swapped(asking, best.text, best.context) else 0.0,
    }


class AbstentionModel:
    """p(answerable) = logistic(bias + sum(coefficient * signal))."""

    def __init__(self, coefficients: Mapping[str, float] | None = None) -> None:
        self.coefficients = dict(DEFAULT_COEFFICIENTS if coefficients is None else coefficients)

    def probability(self, values: Mapping[str, float]) -> float:
        z = self.coefficients.get("bias", 0.0) + sum(self.coefficients.get(k, 0.0) * v for k, v in values.items())
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
