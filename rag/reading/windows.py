"""Reading windows: a run of whole sentences of one paragraph around a focus sentence, which the window reader
reads at once (the span head then says which of its sentences answers, seeing them side by side).

The same function cuts training windows (evals/reader_data.py) and run-time windows (rag/reading/trained.py),
so the model always sees windows of one shape. Pure text: no tokenizer.
"""

from __future__ import annotations

from rag.text.sentences import sentence_spans

WINDOW_CHARS = 600  # the longest window, in characters (about 130 word pieces); the focus sentence always fits
_LOOK_CHARS = 2_000  # how far either side of the focus a paragraph's sentences are looked for


def paragraph_sentences(text: str, start_char: int, end_char: int) -> list[tuple[int, int]]:
    """The sentence spans of the paragraph (text between newlines) holding text[start_char:end_char], within
    `_LOOK_CHARS` of it, in `text`'s coordinates.

    >>> t = "A b. C d.\\nE f. G h. I j."
    >>> [t[s:e] for s, e in paragraph_sentences(t, 15, 19)]
    ['E f.', 'G h.', 'I j.']
    """
    lo = text.rfind("\n", max(0, start_char - _LOOK_CHARS), start_char) + 1
    if lo == 0:
        lo = max(0, start_char - _LOOK_CHARS)
    hi = text.find("\n", end_char, end_char + _LOOK_CHARS)
    if hi == -1:
        hi = min(len(text), end_char + _LOOK_CHARS)
    return sentence_spans(text, lo, hi)


def window_around(text: str, start_char: int, end_char: int, max_chars: int = WINDOW_CHARS) -> tuple[int, int]:
    """(start_char, end_char) of the window around the sentence at [start_char, end_char): that sentence, then the
    next and the previous sentence of its paragraph in turn while the window stays within `max_chars`.

    >>> t = "One. Two two. Three three three. Four."
    >>> s, e = window_around(t, 5, 13, max_chars=32)
    >>> t[s:e]
    'One. Two two. Three three three.'
    >>> window_around(t, 5, 13, max_chars=5)
    (5, 13)
    """
    spans = paragraph_sentences(text, start_char, end_char)
    at = next((i for i, (s, e) in enumerate(spans) if s < end_char and start_char < e), None)
    if at is None:
        return start_char, end_char
    lo = hi = at
    w_start, w_end = min(start_char, spans[at][0]), max(end_char, spans[at][1])
    grew = True
    while grew:
        grew = False
        if hi + 1 < len(spans) and spans[hi + 1][1] - w_start <= max_chars:
            hi += 1
            w_end = spans[hi][1]
            grew = True
        if lo > 0 and w_end - spans[lo - 1][0] <= max_chars:
            lo -= 1
            w_start = spans[lo][0]
            grew = True
    return w_start, w_end
