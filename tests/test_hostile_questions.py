"""Hostile questions get a clear answer or refusal, never a crash: empty, whitespace, 100 KB long, control and
escape characters, lone surrogates, bidi overrides, other languages and scripts, query-syntax and SQL fragments."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.assistant import EMPTY_QUESTION
from rag.reading.cite import citation_errors
from rag.types import Answer, AnswerPiece

HOSTILE = {
    "empty": "",
    "whitespace": " \t\n\r\u00a0\u3000 ",
    "punctuation only": "?!…",
    "emoji only": "🤔🇰🇿👩‍👩‍👧",
    "100 KB": "Who requested CSTO troops? " * 3800,
    "NUL and escapes": "\x00\x1b[2J\x1b[31mWho requested\x07 CSTO troops?\x1b]0;title\x07",
    "lone surrogate": "Who \ud800 requested CSTO troops?",
    "bidi override": "\u202eWho requested CSTO troops?\u202c",
    "zero-width joins": "Who\u200brequested\u200dCSTO\ufefftroops?",
    "Russian": "Кто запросил войска ОДКБ?",
    "Chinese": "谁请求了集安组织部队？",
    "Arabic": "من طلب قوات منظمة معاهدة الأمن الجماعي؟",
    "FTS5 syntax": 'NEAR("a" "b") AND OR NOT * ^ " : (',
    "SQL": "'; DROP TABLE documents; -- OR 1=1",
    "format strings": "{0} %s %n {__class__} ${PATH} $(rm -rf /)",
    "HTML": "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "one huge word": "x" * 1999,
}


def _assert_well_formed(answer: Answer, assistant: Any) -> None:
    assert isinstance(answer, Answer) and answer.text.strip()
    if answer.abstained:
        assert not answer.citations
    else:
        articles = {c.doc_id: assistant.article(c.doc_id) for c in answer.citations}
        assert answer.citations and citation_errors(answer, articles) == []


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_question_gets_an_answer_or_a_clear_refusal(seed_assistant: Any, name: str) -> None:
    answer = seed_assistant.ask(HOSTILE[name], history=[(HOSTILE[name], "\ud800\x00")])
    _assert_well_formed(answer, seed_assistant)
    streamed = list(seed_assistant.ask_stream(HOSTILE[name]))
    assert isinstance(streamed[-1], Answer)
    assert "".join(p.text for p in streamed[:-1] if isinstance(p, AnswerPiece)) == streamed[-1].text


def test_what_each_hostile_question_gets(seed_assistant: Any) -> None:
    for name in ("empty", "whitespace", "punctuation only", "emoji only"):
        assert seed_assistant.ask(HOSTILE[name]).text == EMPTY_QUESTION, name
    too_long = seed_assistant.ask(HOSTILE["100 KB"])
    assert too_long.abstained and "at most 2,000 characters" in too_long.text
    # Invisible or control characters do not change a real question's answer.
    for name in ("NUL and escapes", "lone surrogate", "bidi override", "zero-width joins"):
        answer = seed_assistant.ask(HOSTILE[name])
        assert "Tokayev" in answer.text or "President of Kazakhstan" in answer.text, (name, answer.text)
    for name in ("FTS5 syntax", "SQL", "format strings", "HTML", "Chinese", "Arabic"):
        assert seed_assistant.ask(HOSTILE[name]).abstained, name
    assert seed_assistant.stats()["documents"] == 1  # the SQL did nothing


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=st.text(max_size=300))
def test_any_text_as_a_question_is_answered_or_refused(seed_assistant: Any, question: str) -> None:
    _assert_well_formed(seed_assistant.ask(question), seed_assistant)


@pytest.mark.parametrize(("question", "language"), [
    ("Qui a demandé l'envoi des troupes de l'OTSC au Kazakhstan ?", "French"),
    ("Кто запросил войска ОДКБ?", "Russian"),
    ("谁请求了集安组织部队？", "Chinese"),
    ("Wer hat die Truppen der OVKS angefordert?", "German"),
])
def test_a_question_not_in_english_is_told_so(seed_assistant: Any, question: str, language: str) -> None:
    """The readers understand English: a refusal of a question in another language says so, and what to do."""
    answer = seed_assistant.ask(question)
    assert answer.abstained
    assert answer.notice == (f"The question looks {language}: the assistant understands questions in English "
                             "only. Ask it in English.")


def test_an_english_refusal_has_no_language_notice(seed_assistant: Any) -> None:
    for question in ("What is the capital of France?", "Was Tokayev elected in 1999?", "CSTO budget?"):
        answer = seed_assistant.ask(question)
        assert answer.notice == "", question
