"""Sentence boundaries as character spans, so every sentence can be cited as text[start:end]."""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st sr jr gen gov sen sens rep reps lt col capt sgt maj adm cmdr rev hon pres supt
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun
    no nos vol fig figs p pp v vs etc approx est dept univ inc ltd co corp plc llc bros ave blvd rd mt ft
    e.g i.e u.s u.k u.n u.s.a a.m p.m d.c""".split()
)

# A candidate end: terminal punctuation, optional closing quotes/brackets, then whitespace. Only from the start of
# a punctuation run, and possessive: a run of 50,000 dots is one linear scan, not a quadratic backtrack.
_END_RE = re.compile(r"(?<![.!?…])[.!?…]++[”\"’'»)\]]*+(?=\s)")
_NEXT_START_RE = re.compile(r"\s+([“\"‘'«(\[¿¡\-–—]?[\w])")
# A dateline opening a paragraph is a span of its own, so no quote or short answer starts with it: "(CNN) ",
# "New York (CNN Business) ", "LONDON (AP) — ", "GARDINER, Mont. – ", "WASHINGTON — ". Only when a sentence follows.
_DATELINE_RE = re.compile(
    r"(?:(?:[A-Z][A-Za-z.'’ -]{0,30}?\s)?\((?:CNN|AP|Reuters|AFP)(?: Business| Sport| Travel| Style)?\)(?:\s*[—–-])?\s+"
    r"|[A-Z][A-Z.'’ -]{2,40}(?:, [A-Z][a-z]{1,5}\.(?: [A-Z][a-z]{1,5}\.)?)?\s+[—–-]\s+)"
    r"(?=[“\"‘'(]?[A-Z0-9])"
)


def _is_abbreviation(text: str, dot_index: int) -> bool:
    """True when the '.' at dot_index ends an abbreviation or initials ("Mr.", "U.S.", "J.", "George H.W. Bush")."""
    if text[dot_index] != ".":
        return False
    start = dot_index
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    word = text[start:dot_index].lower()
    if not word:
        return False
    if word in _ABBREVIATIONS:
        return True
    # Initials ("J. K. Rowling", "H.W.", "P.O. Box"), but not a sentence ending in a one-letter word like "I."
    letters = text[start:dot_index].split(".")
    return all(len(x) == 1 and x.isupper() for x in letters) and letters != ["I"]


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start_char, end_char) of each sentence in text[start:end], whitespace trimmed.

    >>> t = "Mr. Smith left. He said: “No.” Then\\nA new line"
    >>> [t[s:e] for s, e in sentence_spans(t)]
    ['Mr. Smith left.', 'He said: “No.”', 'Then', 'A new line']
    >>> [t[s:e] for t in ["Roe v. Wade fell. Reps. Jamie Raskin and George H.W. Bush wrote to P.O. Box 9. I did."]
    ...  for s, e in sentence_spans(t)]
    ['Roe v. Wade fell.', 'Reps. Jamie Raskin and George H.W. Bush wrote to P.O. Box 9.', 'I did.']
    >>> t = "GARDINER, Mont. – Yellowstone closed. More rain fell.\\nLondon (CNN) Rain fell.\\nTHE END – for now"
    >>> [t[s:e] for s, e in sentence_spans(t)]
    ['GARDINER, Mont. –', 'Yellowstone closed.', 'More rain fell.', 'London (CNN)', 'Rain fell.', 'THE END – for now']
    >>> t = "It rained. NATO – The alliance met."  # a window from the second sentence splits it as the whole text does
    >>> [t[s:e] for s, e in sentence_spans(t, 11)] == [t[s:e] for s, e in sentence_spans(t)][1:]
    True
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    line_start = start
    while line_start < end:
        line_end = text.find("\n", line_start, end)
        if line_end == -1:
            line_end = end
        _split_line(text, line_start, line_end, spans)
        line_start = line_end + 1
    return spans


def _split_line(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    if start == 0 or text[start - 1] == "\n":  # a paragraph's start, not a window's inside one: the same spans
        while start < end and text[start].isspace():
            start += 1
        dateline = _DATELINE_RE.match(text, start, end)
        if dateline and dateline.end() < end:
            _append_trimmed(text, start, dateline.end(), spans)
            start = dateline.end()
    sent_start = start
    for m in _END_RE.finditer(text, start, end):
        nxt = _NEXT_START_RE.match(text, m.end(), end)
        if not nxt:
            continue
        first = nxt.group(1)[-1]
        if first.isalpha() and not first.isupper():
            continue
        # "Mr. Smith" is no ending, but a closing quote after the dot ("said “No.” Then") is one.
        if text[m.end() - 1] == "." and _is_abbreviation(text, m.end() - 1):
            continue
        _append_trimmed(text, sent_start, m.end(), spans)
        sent_start = m.end()
    _append_trimmed(text, sent_start, end, spans)


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
