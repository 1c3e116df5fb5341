"""The trained reader (models/reader): an int8 ONNX cross-encoder that reads a question with each candidate
sentence and gives p(the sentence answers it) and the answer's span inside it. onnxruntime, tokenizers and
numpy only: no torch at query time."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from rag import int8
from rag.errors import ConfigError
from rag.reading import Reading, Relevance, SpanChoice
from rag.reading.abstain import signals
from rag.reading.pairs import MAX_TOKENS, encode_pair
from rag.reading.rerank import Candidate, SentenceRanker
from rag.reading.windows import window_around
from rag.text.sentences import sentence_spans
from rag.text.words import tokens
from rag.types import Article, Passage

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from rag.reading.spans import SpanModel

ONNX_FILE = "reader.int8.onnx"
MODEL_FILE = "model.json"  # what the model reads (ModelShape), written by the training command


def default_model_dir() -> Path:
    """models/reader beside the package (the committed artifact)."""
    return Path(__file__).resolve().parent.parent.parent / "models" / "reader"


@dataclass(frozen=True)
class ModelShape:
    """What the model was trained to read with the question: one sentence (`unit` "sentence", with the title and
    the preceding sentence) or a window of sentences (`"window"`, rag/reading/windows.py), in at most
    `max_tokens` word pieces. A model folder without model.json holds a sentence model of 128."""

    unit: str = "sentence"
    max_tokens: int = MAX_TOKENS

    @classmethod
    def load(cls, folder: Path) -> ModelShape:
        path = folder / MODEL_FILE
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text())
        shape = cls(str(raw["unit"]), int(raw["max_tokens"]))
        if shape.unit not in ("sentence", "window"):
            raise ConfigError(f"{path}: unknown unit {shape.unit!r} (sentence or window)")
        return shape

    def as_dict(self) -> dict[str, object]:
        return {"unit": self.unit, "max_tokens": self.max_tokens}


class OnnxReaderModel:
    """The ONNX session: word-piece ids of pairs in, (answer logits, start logits, end logits) out."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        if not path.is_file():
            raise ConfigError(f"the reader model {path} is missing (it is committed under models/reader; "
                              "`make reader` trains it again); without it, set RAG_READER=lexical and "
                              "RAG_SHORT_ANSWERS=patterns")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_cpu_mem_arena = False  # shapes change with every batch (rag/index/onnx_embed.py says why)
        options.enable_mem_pattern = False
        # Its threads sleep between runs instead of spinning on the cores the sentence encoder needs next: SQuAD
        # tuning (300 questions, cold caches) p50 115-118 -> 65-69 ms, p95 174-208 -> 112-115 ms (README, Reading).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = int8.session(path, options)

    def run(self, ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]]
            ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Each pair read alone, never in a batch with others: the int8 model quantises its activations with one
        scale for the whole input, so in a batch a pair's reading depended on the pairs read with it and on their
        padding (a sentence's logit moved by up to 0.6, its span logits by as much), and an answer on which
        sentences earlier questions had left in the cache. Alone, three pairs take about 7 ms against 6 in one
        batch (2 cores)."""
        logits = np.zeros(len(ids), dtype=np.float32)
        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        for i, (pieces, types) in enumerate(zip(ids, type_ids, strict=True)):
            feed_ids = np.asarray([pieces], dtype=np.int64)
            feed = {"input_ids": feed_ids, "attention_mask": np.ones_like(feed_ids),
                    "token_type_ids": np.asarray([types], dtype=np.int64)}
            answer, start, end = self.session.run(None, feed)
            logits[i] = answer[0]
            starts.append(start[0])
            ends.append(end[0])
        return logits, starts, ends


# The longest short answer, in word pieces. On the held-out SQuAD 1.1 articles of the training run (799 answer
# sentences, the committed model; `evals.train_reader` now reports `span_f1_at_most_N_pieces`) the span F1 is
# 0.656 at 8, 0.654 at 12 and 0.645 at 24; 12 keeps names that run long in word pieces ("Kassym-Jomart Tokayev"
# is 8).
MAX_SPAN_TOKENS = 12


def best_span(start: np.ndarray, end: np.ndarray, lo: int, hi: int, max_tokens: int = MAX_SPAN_TOKENS
              ) -> tuple[int, int, float]:
    """The word-piece span [i, j] within [lo, hi) with the highest start[i] + end[j], j - i < max_tokens.

    >>> best_span(np.array([0., 5., 0., 0.]), np.array([0., 0., 4., 9.]), 1, 4)
    (1, 3, 14.0)
    """
    best = (lo, lo, -1e9)
    for i in range(lo, hi):
        j_hi = min(hi, i + max_tokens)
        j = i + int(np.argmax(end[i:j_hi]))
        score = float(start[i] + end[j])
        if score > best[2]:
            best = (i, j, score)
    return best


WINDOW_MAX_TOKENS = 192  # a window reader's whole input (question, window, title and context), in word pieces
UNREAD_PENALTY = 20.0  # below the window's logit: a sentence cut off the end of its window's word pieces


def piece_range(offsets: Sequence[tuple[int, int]], start_char: int, end_char: int, first: int) -> tuple[int, int]:
    """[lo, hi) of the word pieces (indices into the pair's ids; the text's first piece is at `first`) lying in
    text[start_char:end_char]; lo == hi when none does.

    >>> piece_range([(0, 3), (4, 7), (8, 11)], 4, 11, 5)
    (6, 8)
    """
    inside = [i for i, (a, b) in enumerate(offsets) if start_char <= a and b <= end_char]
    return (first + inside[0], first + inside[-1] + 1) if inside else (first, first)


def sentence_scores(logit: float, start: np.ndarray, end: np.ndarray, first: int,
                    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
                    ) -> list[tuple[float, int, int]]:
    """Each sentence of a window (its `spans`, in characters of the window): (score, first and last word piece of
    its best span, -1 when none). The score is the window's answer logit plus the log-ratio of the sentence's best
    span's score to the best span's of the whole window, so the sentence the span head points at carries the
    window's logit and the others less by how much less likely their best span is.

    >>> sentence_scores(1.0, np.array([0., 0., 3., 0.]), np.array([0., 1., 0., 3.]), 0, [(0, 1), (2, 3), (4, 5), (6, 7)],
    ...                 [(0, 3), (4, 7), (8, 9)])
    [(-4.0, 0, 1), (1.0, 2, 3), (-19.0, -1, -1)]
    """
    top = best_span(start, end, first, first + len(offsets))[2] if offsets else 0.0
    out = []
    for s, e in spans:
        lo, hi = piece_range(offsets, s, e, first)
        if hi > lo:
            a, b, best = best_span(start, end, lo, hi)
            out.append((logit + best - top, a, b))
        else:
            out.append((logit - UNREAD_PENALTY, -1, -1))
    return out


_EDGE = " ,.;:"
_WRAPPED = _EDGE + "()[]\"“”‘’"  # what a word of a span may carry around it: punctuation, brackets, quotes
# Lower-case words inside a name ("Treaty on European Union", "Bank of England"): beside one, a name goes on.
_NAME_LINKS = frozenset({"of", "on", "for", "and", "the", "de", "du", "la", "le", "von", "van", "der", "al", "bin"})


def span_text(sentence: str, start_char: int, end_char: int, question: str) -> str:
    """The short answer a span of the sentence gives, trimmed of punctuation at either end, and of a name the
    question holds where the span puts a description before or after it ("international expert Ruslan Osipenko"
    for "Who is Ruslan Osipenko?"); "" for no span, or for words the question itself holds.

    The question's other words are kept: a span's own head noun or name part is part of the answer ("compound
    engines" for "What type of engines...?", "Rhine Valley" for "What is the alpine valley known as?"). Trimming
    every question word at either end cost 1.4 points of short-answer F1 on the SQuAD 2.0 tuning split and made
    fragments ("Arthur H" of "Arthur H. Compton" for "Who discovered the Compton Effect?").

    >>> span_text("Since then, 26 protesters died.", 11, 25, "How many protesters died?")
    '26 protesters'
    >>> span_text("An expert (Ruslan Osipenko) said so.", 0, 27, "Who is Ruslan Osipenko?"), span_text("It rose.", 0, 2, "it?")
    ('An expert', '')
    >>> span_text("the Rhine Valley is", 4, 16, "What is the alpine valley known as?")
    'Rhine Valley'
    >>> span_text("the Treaty on European Union", 4, 28, "What is a source of European Union law?")
    'Treaty on European Union'
    """
    if not 0 <= start_char < end_char:
        return ""
    asked = {w.lower() for w in tokens(question)}
    words = sentence[start_char:end_char].split()

    def bare(word: str) -> str:
        return word.strip(_WRAPPED).lower()

    def capitalised(word: str) -> bool:
        return word.strip(_WRAPPED)[:1].isupper()

    def without_named_edge(edge_first: list[str]) -> list[str]:
        """`edge_first` less its leading punctuation, and less its leading run of the question's words when that
        run is a name (every word capitalised) beside a word that is not: a description of what it names."""
        while edge_first and not bare(edge_first[0]):
            edge_first = edge_first[1:]
        asked_run = 0
        while asked_run < len(edge_first) and (bare(edge_first[asked_run]) in asked or not bare(edge_first[asked_run])):
            asked_run += 1
        run, rest = edge_first[:asked_run], edge_first[asked_run:]
        if rest and run and all(capitalised(w) for w in run if bare(w)) and not capitalised(rest[0]) \
                and bare(rest[0]) not in _NAME_LINKS:
            return rest
        return edge_first

    words = without_named_edge(words[::-1])[::-1]
    words = without_named_edge(words)
    short = " ".join(words).strip(_EDGE)
    if short.count("(") != short.count(")"):
        short = short.strip("()").strip(_EDGE)
    return "" if short.lower() in question.lower() else short


class SentenceReader(Protocol):
    """A model reading sentences for a question: a PairReading of each (PairModel, SpanModel)."""

    def read_sentences(self, question: str, sentences: Sequence[Candidate], articles: Mapping[str, Article]
                       ) -> list[PairReading]: ...


def span_choice(model: SentenceReader, question: str, articles: Mapping[str, Article]) -> SpanChoice:
    """The short answer the model finds in each of some sentences and its span score (start + end logits), so that
    the answer's short answer can be the best span among the sentences it cites (`Reading.spans`)."""

    def choose(sentences: Sequence[Candidate]) -> list[tuple[str, float]]:
        return [(span_text(s.text, r.start_char, r.end_char, question), r.span_score)
                for s, r in zip(sentences, model.read_sentences(question, sentences, articles), strict=True)]

    return choose


def support_inputs(logits: Sequence[float], lexical: Mapping[str, float]) -> dict[str, float]:
    """What p(answerable) is computed from: the lexical signals of the best sentence (rag/reading/abstain.py), its
    combined logit (`logit`) and its lead over the next sentence's (`lead`).

    >>> support_inputs([2.0, -1.0], {"type": 1.0})
    {'type': 1.0, 'logit': 2.0, 'lead': 3.0}
    """
    return {**lexical, "logit": logits[0], "lead": max(0.0, logits[0] - logits[1]) if len(logits) > 1 else 0.0}


def support_probability(coefficients: Mapping[str, float], inputs: Mapping[str, float]) -> float:
    """logistic(bias + the sum of coefficient x input over the inputs the coefficients name).

    >>> round(support_probability({"bias": 0.0, "logit": 1.0}, support_inputs([2.0, -1.0], {})), 3)
    0.881
    """
    z = coefficients.get("bias", 0.0) + sum(c * inputs[k] for k, c in coefficients.items() if k != "bias")
    return _sigmoid(z)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


@dataclass(frozen=True)
class Calibration:
    """Fitted on the tuning split by `python -m evals.tune --reader trained` (models/reader/calibration.json):
    how many sentences to read, the refusal threshold, and when a second sentence joins the answer."""

    sentences_read: int = 16
    min_support: float = 0.5
    second_margin: float = 0.1  # a second sentence joins when its p is within this of the best's
    next_margin: float = 0.1  # the sentence right after the best joins when its p is within this ("next" rule)
    rules: tuple[str, ...] = ()  # the composition rules of rag/reading/compose.py kept with this reader
    prior_weight: float = 0.0  # weight of the lexical pre-score added to the model's logit, for ranking and p
    # p(answerable) = logistic(bias + the coefficient of each input of support_inputs named here: the best
    # sentence's combined logit, its lead over the next, lexical signals of rag/reading/abstain.py); empty: the p alone.
    support: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> Calibration:
        path = folder / "calibration.json"
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text())
        defaults = cls()
        return cls(**{f.name: type(getattr(defaults, f.name))(raw[f.name]) for f in fields(cls) if f.name in raw})

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class PairReading(NamedTuple):
    """A model's reading of one candidate sentence: its answer logit, the best span's start and end character in
    the sentence (-1 when none of its word pieces was read) and that span's start + end logit (`span_score`)."""

    logit: float
    start_char: int
    end_char: int
    span_score: float


class PairModel:
    """One model folder (its ModelShape, reader.int8.onnx and tokenizer.json) reading a question with candidate
    sentences: `read_sentences` gives each one's PairReading (answer logit, best span and its score), cached by
    question and sentence. The reader (models/reader) and the short-answer model
    (models/span, rag/reading/spans.py) are both read through it. The session loads on first use."""

    missing_hint = ("it is committed under models/reader; `make reader` trains it again; without it, set "
                    "RAG_READER=lexical and RAG_SHORT_ANSWERS=patterns")

    def __init__(self, folder: Path, threads: int = 0) -> None:
        self.folder = folder
        missing = [name for name in (ONNX_FILE, "tokenizer.json") if not (folder / name).is_file()]
        if missing:
            raise ConfigError(f"{', '.join(missing)} missing in {folder} ({self.missing_hint})")
        self.shape = ModelShape.load(folder)
        self.threads = threads
        self.model: OnnxReaderModel | None = None
        self.tokenizer: Tokenizer | None = None
        self.model_seconds = 0.0  # time spent in the model, summed over every read (for evals/tune.py)
        self._cache: dict[tuple[str, str, int, str], PairReading] = {}
        self._lock = threading.Lock()

    def load(self) -> tuple[OnnxReaderModel, Tokenizer]:
        with self._lock:
            if self.model is None or self.tokenizer is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                tokenizer.no_truncation()
                tokenizer.no_padding()
                self.model, self.tokenizer = OnnxReaderModel(self.folder / ONNX_FILE, self.threads), tokenizer
            return self.model, self.tokenizer

    def read_sentences(self, question: str, sentences: Sequence[Candidate], articles: Mapping[str, Article]
                       ) -> list[PairReading]:
        """The model's reading of each sentence, cached by question and sentence. A window model reads the
        sentences in windows: the first sentence not yet covered (in the order given, best first) gets the window
        around it, and every later sentence inside that window is scored from the same reading."""
        keys = [(question, s.doc_id, s.start_char, s.text) for s in sentences]
        with self._lock:
            known = {k: self._cache[k] for k in keys if k in self._cache}
        todo = [i for i, k in enumerate(keys) if k not in known]
        if todo:
            started = time.perf_counter()
            fresh = self._read(question, [sentences[i] for i in todo], articles)
            with self._lock:
                self.model_seconds += time.perf_counter() - started
                for i, result in zip(todo, fresh, strict=True):
                    known[keys[i]] = self._cache[keys[i]] = result
                while len(self._cache) > _CACHE_PAIRS:
                    self._cache.pop(next(iter(self._cache)))
        return [known[k] for k in keys]

    def _read(self, question: str, sentences: Sequence[Candidate], articles: Mapping[str, Article]
              ) -> list[PairReading]:
        model, tokenizer = self.load()
        windowed = self.shape.unit == "window"
        texts: list[tuple[str, int, int]] = []  # what is read: (doc_id, start_char, end_char) in the article
        member: list[int] = []  # the text each sentence is read in
        for s in sentences:
            at = next((w for w, (doc, lo, hi) in enumerate(texts)
                       if doc == s.doc_id and lo <= s.start_char and s.end_char <= hi), None) if windowed else None
            if at is None:
                text = articles[s.doc_id].text
                texts.append((s.doc_id, *(window_around(text, s.start_char, s.end_char) if windowed
                                          else (s.start_char, s.end_char))))
                at = len(texts) - 1
            member.append(at)
        pairs = []
        for doc, lo, hi in texts:
            article = articles[doc]
            pairs.append(encode_pair(tokenizer, question, article.text[lo:hi], article.title,
                                     previous_sentence(article.text, lo), self.shape.max_tokens))
        logits, starts, ends = model.run([p.ids for p in pairs], [p.type_ids for p in pairs])
        out = []
        for s, w in zip(sentences, member, strict=True):
            pair, lo = pairs[w], texts[w][1]
            score, a, b = sentence_scores(float(logits[w]), starts[w], ends[w], pair.sentence_from, pair.offsets,
                                          [(s.start_char - lo, s.end_char - lo)])[0]
            if not windowed:  # a sentence model's logit is the sentence's own
                score = float(logits[w])
            if a < 0:
                out.append(PairReading(score, -1, -1, -UNREAD_PENALTY))
                continue
            span_score = float(starts[w][a] + ends[w][b])
            f, shift = pair.sentence_from, s.start_char - lo  # word pieces -> characters of the sentence
            out.append(PairReading(score, pair.offsets[a - f][0] - shift, pair.offsets[b - f][1] - shift, span_score))
        return out

    def clear_caches(self) -> None:
        with self._lock:
            self._cache.clear()


class TrainedReader:
    """Reads the `sentences_read` most promising sentences of the passages (by the lexical ranker's cheap
    signals, without sentence embeddings) with the cross-encoder (a PairModel), one by one or in windows (its
    ModelShape); p(answer) orders them and decides refusal, and the span head gives the short answer. Sentences it
    did not read follow, in the pre-score's order."""

    name = "trained"

    def __init__(self, ranker: SentenceRanker, model_dir: Path | None = None, sentences_read: int | None = None,
                 min_support: float | None = None, threads: int = 0, short: SpanModel | None = None) -> None:
        folder = model_dir or default_model_dir()
        self.calibration = Calibration.load(folder)
        self.ranker = ranker
        self.sentences_read = sentences_read or self.calibration.sentences_read
        self.min_support = self.calibration.min_support if min_support is None else min_support
        self.second_margin = self.calibration.second_margin
        self.next_margin = self.calibration.next_margin
        self.default_rules = self.calibration.rules
        self.pairs = PairModel(folder, threads)
        self.short = short  # a second short-answer model (RAG_SPAN_MODEL); without it, this model's span head

    @property
    def shape(self) -> ModelShape:
        return self.pairs.shape

    @property
    def model_seconds(self) -> float:
        return self.pairs.model_seconds

    def read(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
             query: str = "") -> Reading:
        text = query or question
        pre = self.ranker.score(question, passages, articles, query, dense=False)
        if not pre:
            return Reading((), 0.0)
        chosen = pre[: self.sentences_read]
        results = self.read_sentences(text, chosen, articles)
        combined = [self._logit(r.logit, cand) for cand, r in zip(chosen, results, strict=True)]
        order = sorted(range(len(chosen)), key=lambda i: -combined[i])
        ordered, logits = [chosen[i] for i in order], [combined[i] for i in order]
        sentences = [replace(c, score=round(_sigmoid(z), 4)) for c, z in zip(ordered, logits, strict=True)]
        # The rest keep their order below every read sentence (scores under 0).
        sentences += [replace(c, score=round(c.score - 10.0, 4)) for c in pre[self.sentences_read:]]
        # The short answer in the best sentence: the short-answer model's span, else this model's span head (its
        # reading of the sentence is cached).
        spans = span_choice(self.short or self.pairs, text, articles)
        return Reading(tuple(sentences), round(self._support(text, ordered, logits), 4), spans([ordered[0]])[0][0],
                       len(chosen), self._relevance(text, articles, pre, ordered[:2], logits[:2]), spans)

    def _logit(self, logit: float, pre: Candidate) -> float:
        """The model's logit plus the calibrated weight of the cheap lexical pre-score."""
        return logit + self.calibration.prior_weight * pre.score

    def read_sentences(self, question: str, sentences: Sequence[Candidate], articles: Mapping[str, Article]
                       ) -> list[PairReading]:
        """The model's reading of each (answer logit, the short answer's span in the sentence and its score)."""
        return self.pairs.read_sentences(question, sentences, articles)

    def _support(self, question: str, ordered: Sequence[Candidate], logits: Sequence[float]) -> float:
        """p(answerable) of the first of `ordered` (pre-scored sentences best first, `logits` their combined
        logits in the same order): its p, or the calibrated combination with lexical signals when there is one."""
        if not self.calibration.support:
            return _sigmoid(logits[0])
        lexical = signals(self.ranker.question_weights(question), question, list(ordered))
        return support_probability(self.calibration.support, support_inputs(logits, lexical))

    def _relevance(self, question: str, articles: Mapping[str, Article], pre: Sequence[Candidate],
                   leaders: Sequence[Candidate], leader_logits: Sequence[float]) -> Relevance:
        """p(answerable) of any sentence of the passages as if it were the best, read on demand (a generated claim
        may rest on a sentence the pre-score did not pick); a span that is not one sentence takes the best
        sentence it overlaps. `leaders`: the reader's best two, whose lead a sentence is measured against."""

        def relevance(doc_id: str, start_char: int, end_char: int) -> float:
            overlapping = [c for c in pre if c.doc_id == doc_id and c.start_char < end_char and start_char < c.end_char]
            best = 0.0
            for cand, (logit, *_) in zip(overlapping, self.read_sentences(question, overlapping, articles),
                                         strict=True):
                others = [(c, z) for c, z in zip(leaders, leader_logits, strict=True)
                          if (c.doc_id, c.start_char) != (cand.doc_id, cand.start_char)]
                ordered = [cand, *(c for c, _ in others)]
                best = max(best, self._support(question, ordered, [self._logit(logit, cand), *(z for _, z in others)]))
            return best

        return relevance

    def clear_caches(self) -> None:
        self.pairs.clear_caches()
        self.ranker.clear_caches()
        if self.short is not None:
            self.short.clear_caches()

    def close(self) -> None:
        """Nothing to stop: it reads on the caller's thread."""


_CACHE_PAIRS = 20_000


def previous_sentence(text: str, start_char: int) -> str:
    """The sentence ending just before `start_char` ("" at the start of the article or of a paragraph)."""
    head = text[max(0, start_char - 600):start_char]
    if not head.strip() or head.rstrip(" ").endswith("\n"):
        return ""
    spans = sentence_spans(head)
    return head[spans[-1][0]:spans[-1][1]] if spans else ""
