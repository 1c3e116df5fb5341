"""Near-duplicate passages (one wire story in several outlets) collapsed to one, the others listed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from rag.retrieve.timeframe import date_span, days_outside
from rag.text.words import tokens
from rag.types import Passage, SourceRef

SHINGLE_WORDS = 4
MIN_CONTAINMENT = 0.6  # share of the shorter passage's 4-word shingles found in the longer one
_DIGIT_WORD = re.compile(r"[^\W_]*\d[^\W_]*")


def shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = [t.lower() for t in tokens(text)]
    if len(words) < SHINGLE_WORDS:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1))


def facts(text: str) -> frozenset[str]:
    """The words with a digit in them: what tells one near-identical story from another.

    >>> sorted(facts("The harbour of Town7 counted 412 boats on day 3."))
    ['3', '412', 'town7']
    """
    return frozenset(_DIGIT_WORD.findall(text.lower()))


def same_story(a: str, b: str, sig_a: frozenset[tuple[str, ...]], sig_b: frozenset[tuple[str, ...]]) -> bool:
    """Near-identical passages that tell the same facts: one holds every number and letter-digit name the other
    does ("Town7 counted 412 boats" and "Town12 counted 87 boats" share most words and no story)."""
    if containment(sig_a, sig_b) < MIN_CONTAINMENT:
        return False
    facts_a, facts_b = facts(a), facts(b)
    return facts_a <= facts_b or facts_b <= facts_a


def containment(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    """|a & b| / min(|a|, |b|): 1.0 when one passage is inside the other.

    >>> containment(shingles("Russia sent paratroopers to Almaty on Thursday."),
    ...             shingles("Moscow said Russia sent paratroopers to Almaty on Thursday, Reuters reported."))
    1.0
    """
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def _preference(p: Passage, rank: int, preferred: Sequence[str], as_of: date | None) -> tuple[int, int, float, str, int]:
    """Sort key: a preferred source first (in the given order), then a dated copy, the one nearest `as_of`
    (the earliest without it), then retrieval rank."""
    order = [s.lower() for s in preferred]
    pref = order.index(p.source.lower()) if p.source.lower() in order else len(order)
    if date_span(p.published) is None:
        return (pref, 1, 0.0, "", rank)
    if as_of is None:
        return (pref, 0, 0.0, p.published, rank)
    return (pref, 0, days_outside(p.published, as_of, as_of) or 0.0, "", rank)


def collapse_duplicates(passages: Sequence[Passage], preferred_sources: Sequence[str] = (),
                        as_of: date | None = None) -> list[Passage]:
    """One passage per group of near-identical passages from different articles, at the group's best rank.
    The kept one is from a preferred source, else the one published nearest the question's date `as_of` (the
    earliest without one); it lists the others in `duplicates`."""
    groups: list[list[int]] = []
    sigs = [shingles(p.text) for p in passages]
    for i, p in enumerate(passages):
        for group in groups:
            if any(passages[j].doc_id != p.doc_id and same_story(p.text, passages[j].text, sigs[i], sigs[j])
                   for j in group):
                group.append(i)
                break
        else:
            groups.append([i])
    out = []
    for group in groups:
        keep = min(group, key=lambda i: _preference(passages[i], i, preferred_sources, as_of))
        kept = passages[keep]
        others: dict[str, SourceRef] = {}
        for i in group:
            q = passages[i]
            if q.doc_id != kept.doc_id and q.doc_id not in others:
                others[q.doc_id] = SourceRef(doc_id=q.doc_id, title=q.title, source=q.source, url=q.url,
                                             published=q.published)
        out.append(replace(kept, score=passages[group[0]].score, duplicates=tuple(others.values())))
    return out
