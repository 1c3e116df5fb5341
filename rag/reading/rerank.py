"""Sentence-level re-ranking: every sentence of the candidate passages scored against the question.

Signals (all offline): embedding similarity of question and sentence; IDF-weighted coverage of the question's
words by the sentence, and by the sentence with its preceding sentence and the article title (its context);
overlap of the question's names and numbers; the passage's retrieval rank; whether the sentence holds the
kind of thing the question asks for (a number for "how many", a date for "when", a name for "who"/"where");
and how near its article's date is to the period the question points to (`Passage.recency`, rag/retrieve/timeframe.py).
A sentence that is itself a question never answers one (news quiz and FAQ pages repeat the question verbatim).
The weights were fitted on a SQuAD 2.0 sample disjoint from the evaluation sample (`evals/tune.py`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.text.sentences import sentence_spans
from rag.text.words import STOPWORDS, answer_type, asking_part, has_type, is_question, stem, tokens
from rag.types import Article, Passage

FEATURES = ("dense", "coverage", "context", "names", "rank", "type", "recency")
# Fitted by evals/tune.py on 600 SQuAD 2.0 questions outside the evaluation sample and RealTime QA's June
# questions (best sentence right 0.772 -> 0.787 against the hand-set weights before it; 0.792 since the
# retrieval rank's weight went 0.02 -> 0.05 in a later refit).
# The recency prior's weight (rag.retrieve.timeframe; no effect on an undated corpus) is not fitted: on the tuning split
# every weight from 0 to 2 scores the same (after retrieval's prior, RealTime QA's June pools hold only that
# week's articles), so it is a judgement, 0.2: a sentence of an article a year older than the freshest in the
# pool loses 0.14, a fifth of the dense similarity's weight.
DEFAULT_WEIGHTS: dict[str, float] = {"dense": 0.7, "coverage": 0.5, "context": 0.3, "names": 0.05, "rank": 0.05,
                                     "type": 0.0, "recency": 0.2}
# A sentence without what the question asks for (no number for "how many") can hardly answer it.
TYPE_PENALTY = {"": 0.0, "number": 1.0, "date": 0.25, "person": 0.15, "place": 0.15}
QUESTION_PENALTY = 1.0  # a sentence ending in "?"
SCENE_WEIGHT = 0.5  # words of a question's scene-setting sentences ("Gas prices have been falling. What was…?")
_CACHE_SENTENCES = 20_000
IDF_FLOOR = 0.25

DocumentFrequencies = Callable[[Sequence[str]], tuple[Mapping[str, int], int]]


@dataclass(frozen=True)
class Candidate:
    doc_id: str
    start_char: int
    end_char: int
    text: str
    rank: int  # rank of the passage it came from (0 = first)
    score: float = 0.0
    features: tuple[float, ...] = ()
    context: str = ""  # the article title, its year of publication and the preceding sentence


def _idf(df: int, total: int) -> float:
    return math.log(1.0 + (total - df + 0.5) / (df + 0.5))


def rerank_passages(passages: Sequence[Passage], ranked: Sequence[Candidate]) -> list[Passage]:
    """Passages ordered by their best sentence's score (which becomes the passage's score)."""
    best: dict[int, float] = {}  # passage index -> its best sentence's score (overlapping passages share one)
    for c in ranked:
        for i, p in enumerate(passages):
            if p.doc_id == c.doc_id and p.start_char <= c.start_char < p.end_char:
                best[i] = max(best.get(i, c.score), c.score)
    order = sorted(range(len(passages)), key=lambda i: -best.get(i, -99.0))
    return [replace(passages[i], score=round(best.get(i, 0.0), 4)) for i in order]


class SentenceRanker:
    """Scores sentences and orders passages by their best sentence."""

    def __init__(self, embed_model: Any, weights: Mapping[str, float] | None = None,
                 document_frequencies: DocumentFrequencies | None = None, sentences_embedded: int = 0) -> None:
        self.embed_model = embed_model
        # Sentences embedded per question (the best by their other features; the settings' sentences_embedded); 0: all.
        self.sentences_embedded = sentences_embedded
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        self.document_frequencies = document_frequencies
        self._cache: dict[tuple[str, int, str], Any] = {}
        self._question_cache: dict[str, dict[str, float]] = {}
        self._cache_lock = threading.Lock()  # one ranker serves concurrent requests (the web page)

    def question_weights(self, question: str) -> dict[str, float]:
        """Each content word's stem -> its IDF in the corpus (1.0 each without a corpus); the last few are kept."""
        with self._cache_lock:
            weights = self._question_cache.get(question)
        if weights is None:
            weights = self._question_weights(question)
            with self._cache_lock:
                if len(self._question_cache) > 64:
                    self._question_cache.pop(next(iter(self._question_cache)))
                self._question_cache[question] = weights
        return weights

    def clear_caches(self) -> None:
        """Forget sentence vectors and word weights (the corpus changed)."""
        with self._cache_lock:
            self._cache.clear()
            self._question_cache.clear()

    def _question_weights(self, question: str) -> dict[str, float]:
        words = [t for t in tokens(question) if t.lower() not in STOPWORDS]
        if not words:
            return {}
        if self.document_frequencies is None:
            return {stem(w): 1.0 for w in words}
        dfs, total = self.document_frequencies(words)
        out: dict[str, float] = {}
        for w in words:
            out[stem(w)] = max(out.get(stem(w), 0.0), _idf(dfs.get(w, 0), max(total, 1)))
        # A word the question asks about keeps a quarter of the top weight however common it is: in a corpus all
        # about one story, "protests" and "Kazakhstan" are in every chunk, and IDF alone would let a sentence that
        # matches only "began" beat the one about the protests beginning.
        floor = IDF_FLOOR * max(out.values())
        return {s: max(v, floor) for s, v in out.items()}

    def score(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
              query: str = "", dense: bool = True) -> list[Candidate]:
        """Every sentence of the passages with its score and features, best first. `query`, when given, is
        the question made standalone (a follow-up with the previous question): its words are matched,
        while the kind of answer wanted comes from the question as asked. `dense=False`: no sentence
        embeddings (the dense feature is 0), a cheap pre-score for the trained reader."""
        seen: set[tuple[str, int]] = set()
        cands: list[Candidate] = []
        contexts: list[str] = []
        recency: list[float] = []
        for rank, p in enumerate(passages):
            article = articles[p.doc_id]
            previous = ""
            for start, end in sentence_spans(article.text, p.start_char, p.end_char):
                text = article.text[start:end]
                if (p.doc_id, start) not in seen:
                    seen.add((p.doc_id, start))
                    cands.append(Candidate(p.doc_id, start, end, text, rank))
                    contexts.append(f"{article.title} {article.published[:4]} {previous}")
                    recency.append(p.recency)
                previous = text
        if not cands:
            return []
        text = query or question
        weights = self.question_weights(text)
        asking = asking_part(text)
        if asking != text:  # a scene set before the question: its words count for less than the asking sentence's
            asked = {stem(t) for t in tokens(asking)}
            weights = {s: v if s in asked else v * SCENE_WEIGHT for s, v in weights.items()}
        total_weight = sum(weights.values()) or 1.0
        names = {t.lower() for t in tokens(text) if t[:1].isupper() or t[:1].isdigit()}
        kind = answer_type(question)
        w = self.weights
        rows = []  # (features without the dense similarity, the score without it)
        for cand, context, prior in zip(cands, contexts, recency, strict=True):
            words = tokens(cand.text)
            own = {stem(t) for t in words}
            around = own | {stem(t) for t in tokens(context)}
            lower = {t.lower() for t in words}
            features = (
                0.0,
                sum(v for s, v in weights.items() if s in own) / total_weight,
                sum(v for s, v in weights.items() if s in around) / total_weight,
                len(names & lower) / len(names) if names else 0.0,
                1.0 / (1 + cand.rank),
                1.0 if has_type(cand.text, kind, question) else 0.0,
                prior,
            )
            score = sum(w.get(name, 0.0) * f for name, f in zip(FEATURES, features, strict=True))
            if not features[5]:
                score -= TYPE_PENALTY[kind]
            if is_question(cand.text):
                score -= QUESTION_PENALTY
            rows.append((features, score))
        similarity = self._similarity(text, cands, [r[1] for r in rows]) if dense else [0.0] * len(cands)
        scored = []
        for cand, context, sim, (features, score) in zip(cands, contexts, similarity, rows, strict=True):
            features = (float(sim), *features[1:])
            scored.append(Candidate(cand.doc_id, cand.start_char, cand.end_char, cand.text, cand.rank,
                                    round(score + w.get("dense", 0.0) * float(sim), 4),
                                    tuple(round(f, 4) for f in features), context))
        scored.sort(key=lambda c: -c.score)
        return scored

    def _similarity(self, text: str, cands: Sequence[Candidate], lexical: Sequence[float]) -> list[float]:
        """Each sentence's cosine with the question. With `sentences_embedded`, only that many sentences, the best by
        their score without it, are embedded; the others get the lowest of those cosines, so that a sentence the
        words left behind neither gains nor loses against the embedded ones by not being read."""
        chosen = list(range(len(cands)))
        if 0 < self.sentences_embedded < len(cands):
            chosen = sorted(chosen, key=lambda i: -lexical[i])[: self.sentences_embedded]
        sims = self._vectors([cands[i] for i in chosen]) @ self.embed_model.encode([text])[0]
        out = [float(sims.min())] * len(cands)
        for i, sim in zip(chosen, sims, strict=True):
            out[i] = float(sim)
        return out

    def _vectors(self, cands: Sequence[Candidate]) -> Any:
        """Sentence vectors, from a bounded cache keyed by (doc_id, start, text)."""
        import numpy as np

        keys = [(c.doc_id, c.start_char, c.text) for c in cands]
        with self._cache_lock:
            found = {k: self._cache[k] for k in dict.fromkeys(keys) if k in self._cache}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            # Each sentence alone (Encoder.encode_each): in a batch its vector would depend on the sentences
            # embedded with it, and a question's ranking on what earlier questions had left in this cache.
            found.update(zip(missing, self.embed_model.encode_each([k[2] for k in missing]), strict=True))
            with self._cache_lock:
                self._cache.update((k, found[k]) for k in missing)
                while len(self._cache) > _CACHE_SENTENCES:
                    self._cache.pop(next(iter(self._cache)))
        return np.stack([found[k] for k in keys])
