"""The short answer inside a cited sentence: the number, date, person or place the question asks for."""

from __future__ import annotations

import re

from rag.text.words import STOPWORDS, answer_type, stem, tokens

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
          r"Jan\.?|Feb\.?|Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|Sept?\.?|Oct\.?|Nov\.?|Dec\.?)")
_DATE_SPAN = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}"
    rf"(?:,?\s+\d{{4}})?|{_MONTH}\s+\d{{4}}|(?:in|since|until|by)\s+\d{{4}}s?|\d{{4}}s?)\b"
)
_SCALE = r"(?:hundred|thousand|million|billion|trillion|percent|per cent|%)"
_NUMBER_SPAN = re.compile(
    rf"(?:(?:more|less|fewer)\s+than\s+|about\s+|nearly\s+|over\s+|almost\s+|some\s+|around\s+)?"
    rf"(?:[$€£]\s?)?\d[\d,]*(?:\.\d+)?(?:\s*{_SCALE})?"
    rf"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?|"
    rf"millions?)(?:\s+{_SCALE})?\b",
    re.IGNORECASE,
)
_NAME_SPAN = re.compile(r"\b[A-Z][\w’'-]+(?:\s+(?:of\s+|de\s+|van\s+|von\s+|al-)?[A-Z][\w’'-]+){0,4}")
_LEADING_CAPS = frozenset("the a an in on at this that these those it he she they we but and or if as after before "
                          "when while according".split())


def short_answer(question: str, sentence: str) -> str:
    """The phrase of `sentence` answering `question` when the question asks for a number, a date, a person or
    a place and the sentence has one the question does not already contain; else "".

    >>> short_answer("How many protesters were killed?", "Since then, 26 protesters have been killed.")
    '26'
    >>> short_answer("When did the protests start?", "Protests have been held in Kazakhstan since January 2.")
    'January 2'
    >>> short_answer("Who accepted the resignation?", "President Kassym-Zhomart Tokayev accepted the resignation.")
    'President Kassym-Zhomart Tokayev'
    """
    kind = answer_type(question)
    if not kind or re.match(r"\s*(?i:who\s+(?:is|was|are|were))\s+[A-Z]", question):
        return ""  # "Who is Ruslan Osipenko?" asks for a description, not a name
    asked = {t.lower() for t in tokens(question)}
    if kind == "number":
        pattern = _NUMBER_SPAN
    elif kind == "date":
        pattern = _DATE_SPAN
    else:
        pattern = _NAME_SPAN
    spans = []
    for m in pattern.finditer(sentence):
        text = m.group().strip(" ,")
        words = [t.lower() for t in tokens(text)]
        if kind in ("person", "place"):
            while words and words[0] in _LEADING_CAPS:  # a capitalised sentence opener is not a name
                text = text.split(None, 1)[1] if " " in text else ""
                words = words[1:]
        if not words or all(w in asked or w in STOPWORDS for w in words):
            continue
        spans.append((m.start(), text))
    if not spans:
        return ""
    # "How many officers were wounded?": a number followed closely by the question's last word ("748 were
    # wounded") is the one asked for; otherwise the candidate nearest to the question's own words.
    content = [stem(t) for t in tokens(question) if t.lower() not in STOPWORDS]
    if content:
        for start, text in spans:
            following = [stem(t) for t in tokens(sentence[start + len(text):])[:4]]
            if content[-1] in following:
                return text
    anchors = [m.start() for m in re.finditer(r"[\w’'-]+", sentence)
               if m.group().lower() not in STOPWORDS and stem(m.group()) in {stem(a) for a in asked}]
    if not anchors:
        return spans[0][1]
    return min(spans, key=lambda s: min(abs(s[0] - a) for a in anchors))[1]
