"""Training pairs for the reader, derived from SQuAD 1.1 train (CC BY-SA 4.0) only.

Each question gives:
- its answer sentence, labelled 1 with the answer's character span inside it;
- up to `paragraph_negatives` other sentences of its paragraph and `article_negatives` of other paragraphs of
  the same article, chosen among those sharing the most content words with the question (the sentences that
  echo the question without answering it), labelled 0;
- one altered copy of the question paired with its answer sentence, labelled 0, when an alteration applies: a
  name, number or year swapped for another of the article's, a word swapped for its opposite, a negation, or
  a content word swapped for another of the article's. SQuAD 1.1 has no unanswerable questions; these are
  the kinds SQuAD 2.0's writers made theirs with, so the model learns that an on-topic sentence with one
  thing changed does not answer.

Sentences that hold the answer text anywhere are never negatives (SQuAD 1.1's offsets are first occurrences).
Articles are split by title: every 20th (sorted) is held out for the trainer's own evaluation, and
"Immunology" is dropped (two of its paragraphs are in SQuAD 2.0 dev's "Immune_system").
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from rag.reading.windows import window_around
from rag.text.sentences import sentence_spans
from rag.text.words import _OPPOSITE_PAIRS, STOPWORDS, stem, tokens

SQUAD11_FILE = "squad11-train/train-v1.1.derived-from-explorer.json"
EXCLUDED_ARTICLES = frozenset({"Immunology"})
HELD_OUT_EVERY = 20


@dataclass(frozen=True)
class Example:
    question: str
    sentence: str
    title: str
    previous: str
    label: int  # 1: the sentence answers the question
    answer_start: int = -1  # character span of the answer inside `sentence` (label 1 only)
    answer_end: int = -1
    kind: str = "answer"  # answer, paragraph, article, altered:<how>
    question_id: str = ""
    # A window example (`sentence` is a run of sentences, rag/reading/windows.py): its sentences' spans in it.
    spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Paragraph:
    title: str
    text: str
    spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str
    answer_start: int
    article: int  # index into the article list
    paragraph: int  # index into the article's paragraphs


def load_squad11(data_dir: Path) -> tuple[list[list[Paragraph]], list[Question], list[str]]:
    """(articles as lists of sentence-split paragraphs, questions, article titles)."""
    data = json.loads((data_dir / SQUAD11_FILE).read_text(encoding="utf-8"))["data"]
    articles: list[list[Paragraph]] = []
    questions: list[Question] = []
    titles: list[str] = []
    for doc in sorted(data, key=lambda d: d["title"]):
        if doc["title"] in EXCLUDED_ARTICLES:
            continue
        title = doc["title"].replace("_", " ")
        paragraphs = []
        for p_index, p in enumerate(doc["paragraphs"]):
            context = p["context"]
            paragraphs.append(Paragraph(title, context, tuple(sentence_spans(context))))
            for qa in p["qas"]:
                answer = qa["answers"][0]
                questions.append(Question(qa["id"], qa["question"].strip(), answer["text"], answer["answer_start"],
                                          len(articles), p_index))
        articles.append(paragraphs)
        titles.append(doc["title"])
    return articles, questions, titles


def is_held_out(article_index: int) -> bool:
    return article_index % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def _content(text: str) -> set[str]:
    return {stem(t) for t in tokens(text) if t.lower() not in STOPWORDS}


_OPPOSITE: dict[str, str] = {}
for _pair in _OPPOSITE_PAIRS:
    _a, _b = _pair.split()
    _OPPOSITE.setdefault(_a, _b)
    _OPPOSITE.setdefault(_b, _a)
_AUXILIARY = re.compile(r"\b(is|was|are|were|has|have|had|did|does|do|can|could|will|would|should|must)\b",
                        re.IGNORECASE)
_COPULA = frozenset("is was are were has have had".split())
_DETERMINERS = frozenset("the a an his her its their this that these those".split())
_NEGATION = re.compile(r"\b(not|never|no|n't|neither|nor|without)\b", re.IGNORECASE)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")


def alter(question: str, sentence: str, article_text: str, rng: random.Random) -> tuple[str, str] | None:
    """(an altered question the sentence no longer answers, how it was altered), or None when nothing applies."""
    options = []
    words_in_sentence = {stem(t) for t in tokens(sentence)}
    # Another name or number of the article, in place of one the sentence has.
    names = [m for m in _NAME.finditer(question) if m.start() > 0 and stem(m.group().split()[0]) in words_in_sentence]
    others = sorted({m.group() for m in _NAME.finditer(article_text)} - {m.group() for m in _NAME.finditer(sentence)})
    others = [o for o in others if o.lower() not in STOPWORDS and len(o) > 2]
    if names and others:
        m = rng.choice(names)
        options.append((question[: m.start()] + rng.choice(others) + question[m.end():], "name"))
    numbers = [m for m in _NUMBER.finditer(question) if m.group() in sentence]
    other_numbers = sorted({m.group() for m in _NUMBER.finditer(article_text)} - {m.group() for m in _NUMBER.finditer(sentence)})
    if numbers and other_numbers:
        m = rng.choice(numbers)
        options.append((question[: m.start()] + rng.choice(other_numbers) + question[m.end():], "number"))
    # The opposite of a word the sentence has.
    flips = [m for m in re.finditer(r"[A-Za-z]+", question)
             if m.group().lower() in _OPPOSITE and stem(m.group()) in words_in_sentence
             and stem(_OPPOSITE[m.group().lower()]) not in words_in_sentence]
    if flips:
        m = rng.choice(flips)
        options.append((question[: m.start()] + _OPPOSITE[m.group().lower()] + question[m.end():], "opposite"))
    # A negation the sentence does not have.
    aux = _AUXILIARY.search(question)
    if aux and not _NEGATION.search(sentence) and not _NEGATION.search(question):
        at = _negation_point(question, aux)
        options.append((question[:at] + " not" + question[at:], "negation"))
    # Another content word of the article in place of one the question shares with the sentence.
    shared = [m for m in re.finditer(r"[a-z]{5,}", question)
              if m.group() not in STOPWORDS and stem(m.group()) in words_in_sentence]
    pool = sorted({w for w in re.findall(r"\b[a-z]{5,}\b", article_text) if w not in STOPWORDS}
                  - {t.lower() for t in tokens(sentence)})
    if shared and pool:
        m = rng.choice(shared)
        options.append((question[: m.start()] + rng.choice(pool) + question[m.end():], "word"))
    if not options:
        return None
    return rng.choice(options)


def _negation_point(question: str, aux: re.Match[str]) -> int:
    """Where "not" goes: after a copula ("was not ranked"), after the subject for do/can/will ("did Stalin and
    China not enter", "did the company not sign")."""
    if aux.group().lower() in _COPULA:
        return aux.end()
    words = list(re.finditer(r"\S+", question[aux.end():]))
    at = 0
    if words and words[0].group().lower() in _DETERMINERS:
        at = 2
    elif words and words[0].group().lower() in ("it", "he", "she", "they", "we", "you", "i"):
        at = 1
    while at < len(words) and (words[at].group()[:1].isupper() or words[at].group().lower() in ("and", "of")):
        at += 1
    if at == 0 or at >= len(words):
        return aux.end()
    return aux.end() + words[at].start() - 1


def _answer_sentence(q: Question, p: Paragraph) -> int | None:
    """The index of the sentence of `p` holding the answer; None when the answer crosses a sentence boundary."""
    end = q.answer_start + len(q.answer)
    return next((i for i, (s, e) in enumerate(p.spans) if s <= q.answer_start and end <= e), None)


def examples_for(q: Question, articles: list[list[Paragraph]], rng: random.Random, paragraph_negatives: int = 2,
                 article_negatives: int = 1) -> Iterator[Example]:
    paragraphs = articles[q.article]
    p = paragraphs[q.paragraph]
    end = q.answer_start + len(q.answer)
    at = _answer_sentence(q, p)
    if at is None:  # the answer crosses a sentence boundary of ours: no clean label
        return
    s, e = p.spans[at]
    sentence = p.text[s:e]
    previous = p.text[slice(*p.spans[at - 1])] if at else ""
    yield Example(q.question, sentence, p.title, previous, 1, q.answer_start - s, end - s, "answer", q.id)
    asked = _content(q.question)
    answer = q.answer.lower()

    def hard(candidates: list[tuple[int, int, int]], n: int) -> list[tuple[int, int, int]]:
        """The n sentences sharing the most question words (ties broken at random); none holding the answer."""
        scored = []
        for pi, ci, _ in candidates:
            para = paragraphs[pi]
            text = para.text[slice(*para.spans[ci])]
            if answer in text.lower() or len(text) < 20:
                continue
            scored.append((len(asked & _content(text)) + rng.random() * 0.5, pi, ci))
        scored.sort(reverse=True)
        return [(pi, ci, 0) for _, pi, ci in scored[:n]]

    same = [(q.paragraph, ci, 0) for ci in range(len(p.spans)) if ci != at]
    other = [(pi, ci, 0) for pi in rng.sample(range(len(paragraphs)), min(12, len(paragraphs)))
             if pi != q.paragraph for ci in range(len(paragraphs[pi].spans))]
    for kind, chosen in (("paragraph", hard(same, paragraph_negatives)), ("article", hard(other, article_negatives))):
        for pi, ci, _ in chosen:
            para = paragraphs[pi]
            text = para.text[slice(*para.spans[ci])]
            prev = para.text[slice(*para.spans[ci - 1])] if ci else ""
            yield Example(q.question, text, para.title, prev, 0, kind=kind, question_id=q.id)
    article_text = " ".join(para.text for para in rng.sample(paragraphs, min(8, len(paragraphs))))
    altered = alter(q.question, sentence, article_text, rng)
    if altered is not None:
        yield Example(altered[0], sentence, p.title, previous, 0, kind=f"altered:{altered[1]}", question_id=q.id)


def _window(para: Paragraph, start_char: int, end_char: int) -> tuple[str, str, tuple[tuple[int, int], ...], int]:
    """(the window around para.text[start_char:end_char], the sentence before it, its sentences' spans in it,
    where it starts in the paragraph)."""
    lo, hi = window_around(para.text, start_char, end_char)
    spans = tuple((s - lo, e - lo) for s, e in para.spans if lo <= s and e <= hi)
    before = [sp for sp in para.spans if sp[1] <= lo]
    return para.text[lo:hi], para.text[slice(*before[-1])] if before else "", spans, lo


def window_examples_for(q: Question, articles: list[list[Paragraph]], rng: random.Random,
                        paragraph_negatives: int = 1, article_negatives: int = 2) -> Iterator[Example]:
    """The window form of `examples_for`: a window holding the answer (around the answer sentence or, half the
    time, a neighbour of it, as a run-time window around a nearby candidate would be) labelled 1 with the
    answer's span; windows around the sentences sharing most words with the question that do not hold the
    answer (of the same paragraph, then of others), labelled 0; an altered question with the answer window."""
    paragraphs = articles[q.article]
    p = paragraphs[q.paragraph]
    end = q.answer_start + len(q.answer)
    at = _answer_sentence(q, p)
    if at is None:
        return
    focus = at
    if rng.random() < 0.5:
        focus = min(len(p.spans) - 1, max(0, at + rng.choice((-2, -1, 1, 2))))
    text, before, spans, lo = _window(p, *p.spans[focus])
    if not (lo <= q.answer_start and end <= lo + len(text)):
        text, before, spans, lo = _window(p, *p.spans[at])
    yield Example(q.question, text, p.title, before, 1, q.answer_start - lo, end - lo, "answer", q.id, spans)
    asked = _content(q.question)
    answer = q.answer.lower()
    seen = {text}

    def negatives(candidates: list[tuple[int, int]], n: int, kind: str) -> Iterator[Example]:
        scored = sorted(((len(asked & _content(paragraphs[pi].text[slice(*paragraphs[pi].spans[ci])]))
                          + rng.random() * 0.5, pi, ci) for pi, ci in candidates), reverse=True)
        made = 0
        for _, pi, ci in scored:
            if made >= n:
                return
            para = paragraphs[pi]
            w_text, w_before, w_spans, _ = _window(para, *para.spans[ci])
            if answer in w_text.lower() or w_text in seen or len(w_text) < 20:
                continue
            seen.add(w_text)
            made += 1
            yield Example(q.question, w_text, para.title, w_before, 0, kind=kind, question_id=q.id, spans=w_spans)

    yield from negatives([(q.paragraph, ci) for ci in range(len(p.spans)) if ci != at], paragraph_negatives,
                         "paragraph")
    others = [(pi, ci) for pi in rng.sample(range(len(paragraphs)), min(12, len(paragraphs))) if pi != q.paragraph
              for ci in range(len(paragraphs[pi].spans))]
    yield from negatives(others, article_negatives, "article")
    article_text = " ".join(para.text for para in rng.sample(paragraphs, min(8, len(paragraphs))))
    altered = alter(q.question, p.text[slice(*p.spans[at])], article_text, rng)
    if altered is not None:
        yield Example(altered[0], text, p.title, before, 0, kind=f"altered:{altered[1]}", question_id=q.id,
                      spans=spans)


def build(data_dir: Path, questions_wanted: int, seed: int, held_out_questions: int = 800, unit: str = "sentence",
          answers_only: bool = False) -> tuple[list[Example], list[Example]]:
    """(training examples from `questions_wanted` questions of the training articles, shuffled; held-out
    examples from `held_out_questions` questions of the held-out articles). `unit`: "sentence" pairs or
    "window" examples. `answers_only`: each training question gives its answer sentence alone (for a span model;
    the held-out examples keep their negatives)."""
    articles, questions, _ = load_squad11(data_dir)
    rng = random.Random(seed)
    train_q = [q for q in questions if not is_held_out(q.article)]
    held_q = [q for q in questions if is_held_out(q.article)]
    rng.shuffle(train_q)
    rng.shuffle(held_q)
    if unit == "window":
        train = [x for q in train_q[:questions_wanted] for x in window_examples_for(q, articles, rng)]
        held = [x for q in held_q[:held_out_questions]
                for x in window_examples_for(q, articles, rng, paragraph_negatives=2, article_negatives=4)]
    else:  # answers only: the generator yields the answer first, so the negatives are never built
        train = [x for q in train_q[:questions_wanted]
                 for x in islice(examples_for(q, articles, rng), 1 if answers_only else None)]
        held = [x for q in held_q[:held_out_questions] for x in examples_for(q, articles, rng, paragraph_negatives=6,
                                                                article_negatives=4)]
    rng.shuffle(train)
    return train, held
