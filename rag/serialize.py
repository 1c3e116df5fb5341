"""Answers as JSON-ready data: one versioned shape for `rag ask --json`, the page's `/answer` endpoint and the
eval reports. A field's meaning never changes within a schema version; adding a field does not bump it, removing
or renaming one does."""

from __future__ import annotations

from typing import Any

from rag.types import Answer, Citation, Passage, SourceRef

ANSWER_SCHEMA = 1


def answer_to_dict(answer: Answer, *, passages: bool = True) -> dict[str, Any]:
    """The answer as data: its text with [n] markers (`answer`), the citations with exact character spans into
    their cleaned article, refusal, short answer, support, which backend wrote it and why the extractive answer
    stood in (`fallback`), the period the question pointed to, timings; the passages it was given unless
    `passages=False` (the eval reports leave them out)."""
    data: dict[str, Any] = {
        "schema": ANSWER_SCHEMA,
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "short_answer": answer.short_answer,
        "support": round(answer.support, 4),
        "backend": answer.backend,
        "fallback": answer.fallback,
        "dropped": list(answer.dropped),
        "period": answer.period,
        "notice": answer.notice,
        "citations": [citation_to_dict(c) for c in answer.citations],
        "timings_ms": dict(answer.timings_ms),
    }
    if passages:
        data["passages"] = [passage_to_dict(p) for p in answer.passages]
    return data


def citation_to_dict(citation: Citation) -> dict[str, Any]:
    c = citation
    return {"id": c.id, "doc_id": c.doc_id, "title": c.title, "url": c.url, "source": c.source,
            "published": c.published, "published_source": c.published_source, "quote": c.quote,
            "start_char": c.start_char, "end_char": c.end_char, "also_in": [ref_to_dict(r) for r in c.also_in]}


def passage_to_dict(passage: Passage) -> dict[str, Any]:
    p = passage
    return {"doc_id": p.doc_id, "chunk_id": p.chunk_id, "title": p.title, "url": p.url, "text": p.text,
            "score": p.score, "start_char": p.start_char, "end_char": p.end_char, "source": p.source,
            "published": p.published, "duplicates": [ref_to_dict(r) for r in p.duplicates]}


def ref_to_dict(ref: SourceRef) -> dict[str, str]:
    return {"doc_id": ref.doc_id, "title": ref.title, "source": ref.source, "url": ref.url, "published": ref.published}
