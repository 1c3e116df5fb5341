"""Behaviour, not one CPU's numerics: a short answer names what was asked for, in any of the equivalent forms a
model may give."""

from __future__ import annotations

from evals.metrics import contains, normalize

EXTRA_WORDS = 3  # words a short answer may hold beside the name: "President Kassym-Zhomart Tokayev"


def names(short: str, *aliases: str, extra_words: int = EXTRA_WORDS) -> bool:
    """`short` holds one of `aliases` whole (SQuAD normalisation) and at most `extra_words` other words.

    >>> names("President Kassym-Zhomart Tokayev", "Kassym-Zhomart Tokayev")
    True
    >>> names("Shoppers", "Bed Bath & Beyond"), names("the heads of state of the CSTO and Tokayev", "Tokayev")
    (False, False)
    """
    words = len(normalize(short).split())
    return any(contains(short, alias) and words <= len(normalize(alias).split()) + extra_words for alias in aliases)
