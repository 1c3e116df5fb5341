"""The short-answer model (models/span): where in the best sentence the answer is.

The same network and input layout as the reader of models/reader (rag/reading/pairs.py: the question, one
sentence, its title and the sentence before it), trained on the span alone over every SQuAD 1.1 training question
(`python -m evals.train_reader --span-only`, MODEL_CARD.md): the reader's span head is trained beside its answer
head on a fifth as many answer sentences. It is read like the reader (rag.reading.trained.PairModel), and only its
span is used: the answer logit of this model is untrained. onnxruntime, tokenizers and numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rag.reading.rerank import Candidate
from rag.reading.trained import PairModel
from rag.types import Article


def default_span_dir() -> Path:
    """models/span beside the package (the committed artifact)."""
    return Path(__file__).resolve().parent.parent.parent / "models" / "span"


class SpanModel(PairModel):
    """`span(question, sentence, articles)`: the answer's (start_char, end_char) in the sentence's text, (-1, -1)
    when none of its word pieces was read. Loaded on first use; cached by question and sentence."""

    missing_hint = ("committed under models/span; `python -m evals.train_reader --span-only --out models/span` "
                    "trains it again; without it, set RAG_SHORT_ANSWERS=model or patterns")

    def __init__(self, folder: Path | None = None, threads: int = 0) -> None:
        super().__init__(folder or default_span_dir(), threads)

    def span(self, question: str, sentence: Candidate, articles: Mapping[str, Article]) -> tuple[int, int]:
        reading = self.read_sentences(question, [sentence], articles)[0]
        return reading.start_char, reading.end_char
