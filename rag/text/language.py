"""Which language a question is written in, so that a refusal can say the readers understand English only.

py3langid (a maintained langid.py: naive Bayes over byte n-grams, 97 languages, its model in the wheel) names the
language; a short question's guess is unsure, so only a confident one counts.
"""

from __future__ import annotations

import threading
from typing import Any

MIN_CONFIDENCE = 0.4  # normalised probability of the language named: below it, a short English question can be
# taken for Afrikaans or Pidgin ("CSTO troops", "Was Tokayev elected?")
_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kk": "Kazakh", "ko": "Korean",
    "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}
_lock = threading.Lock()
_identifier: Any = None


def _classify(text: str) -> tuple[str, float]:
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier  # the model bundled in the wheel

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        code, confidence = _identifier.classify(text)
    return str(code), float(confidence)


def foreign_language(text: str) -> str:
    """The name of the language `text` is confidently in, when that is not English; "" otherwise."""
    if not any(c.isalpha() for c in text):
        return ""
    code, confidence = _classify(text)
    # Only the languages named here: others it names for English questions are English-like (Nigerian Pidgin) or
    # Latin terms ("malum in se"), and on SQuAD 2.0's 11,873 English questions they were its only errors but two.
    return _NAMES.get(code, "") if confidence >= MIN_CONFIDENCE else ""


def english_only_notice(question: str) -> str:
    """What a refusal adds for a question not in English ("" for one in English)."""
    language = foreign_language(question)
    if not language:
        return ""
    return f"The question looks {language}: the assistant understands questions in English only. Ask it in English."
