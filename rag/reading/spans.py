"""The short-answer model (models/span): where in the best sentence the answer is.

The same network and input layout as the reader of models/reader (rag/reading/pairs.py: the question, one
sentence, its title and the sentence before it), trained on the span alone over every SQuAD 1.1 training question
(`python -m evals.train_reader --span-only`, MODEL_CARD.md): the reader's span head is trained beside its answer
head on a fifth as many answer sentences. Only the span head is read; the answer logit of this model is untrained.
onnxruntime, tokenizers and numpy only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from rag.errors import ConfigError
from rag.reading.pairs import encode_pair
from rag.reading.rerank import Candidate
from rag.reading.trained import ONNX_FILE, ModelShape, OnnxReaderModel, best_span, previous_sentence
from rag.types import Article

_CACHE_SPANS = 5_000


def default_span_dir() -> Path:
    """models/span beside the package (the committed artifact)."""
    return Path(__file__).resolve().parent.parent.parent / "models" / "span"


class SpanModel:
    """`span(question, sentence, articles)`: the answer's (start_char, end_char) in the sentence's text, (-1, -1)
    when none of its word pieces was read. Loaded on first use; cached by question and sentence."""

    def __init__(self, folder: Path | None = None, threads: int = 0) -> None:
        self.folder = folder or default_span_dir()
        if not (self.folder / ONNX_FILE).is_file() or not (self.folder / "tokenizer.json").is_file():
            raise ConfigError(f"the short-answer model needs {ONNX_FILE} and tokenizer.json in {self.folder} "
                              "(committed under models/span; `python -m evals.train_reader --span-only --out "
                              "models/span` trains it again); without it, set RAG_SHORT_ANSWERS=model or patterns")
        self.shape = ModelShape.load(self.folder)
        if self.shape.unit != "sentence":
            raise ConfigError(f"{self.folder}: a short-answer model reads one sentence, not a {self.shape.unit}")
        self.threads = threads
        self._model: OnnxReaderModel | None = None
        self._tokenizer: object = None
        self._cache: dict[tuple[str, str, int, str], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def _load(self) -> tuple[OnnxReaderModel, object]:
        with self._lock:
            if self._model is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                tokenizer.no_truncation()
                tokenizer.no_padding()
                self._tokenizer = tokenizer
                self._model = OnnxReaderModel(self.folder / ONNX_FILE, self.threads)
            return self._model, self._tokenizer

    def span(self, question: str, sentence: Candidate, articles: Mapping[str, Article]) -> tuple[int, int]:
        key = (question, sentence.doc_id, sentence.start_char, sentence.text)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        model, tokenizer = self._load()
        article = articles[sentence.doc_id]
        pair = encode_pair(tokenizer, question, sentence.text, article.title,
                           previous_sentence(article.text, sentence.start_char), self.shape.max_tokens)
        _, starts, ends = model.run([pair.ids], [pair.type_ids])
        found = (-1, -1)
        if pair.offsets:
            first = pair.sentence_from
            a, b, _ = best_span(starts[0], ends[0], first, first + len(pair.offsets))
            found = (pair.offsets[a - first][0], pair.offsets[b - first][1])
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > _CACHE_SPANS:
                self._cache.pop(next(iter(self._cache)))
        return found

    def clear_caches(self) -> None:
        with self._lock:
            self._cache.clear()
