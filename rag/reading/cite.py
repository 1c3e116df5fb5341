"""Citations: exact spans of cleaned articles, built and checked against the article text."""

from __future__ import annotations

from collections.abc import Mapping

from rag.types import Answer, Article, Citation, SourceRef


def make_citation(number: int, article: Article, start_char: int, end_char: int,
                  also_in: tuple[SourceRef, ...] = ()) -> Citation:
    """Citation [number] for article.text[start_char:end_char]; `also_in` lists other articles with the same text."""
    if not 0 <= start_char < end_char <= len(article.text):
        raise ValueError(f"span {start_char}:{end_char} is outside article {article.id!r}")
    return Citation(
        id=number, doc_id=article.id, quote=article.text[start_char:end_char], start_char=start_char,
        end_char=end_char, title=article.title, url=article.url, source=article.source,
        published=article.published, also_in=also_in, published_source=article.published_source,
    )


def citation_errors(answer: Answer, articles: Mapping[str, Article]) -> list[str]:
    """What is wrong with an answer's citations ([] when every quote is its article's exact span and
    every [n] in the text has a citation)."""
    errors = []
    for c in answer.citations:
        article = articles.get(c.doc_id)
        if article is None:
            errors.append(f"[{c.id}] cites unknown document {c.doc_id!r}")
        elif article.text[c.start_char : c.end_char] != c.quote:
            errors.append(f"[{c.id}] quote differs from {c.doc_id}[{c.start_char}:{c.end_char}]")
        if f"[{c.id}]" not in answer.text:
            errors.append(f"[{c.id}] is not referred to in the answer text")
    return errors


def quote_context(text: str, start_char: int, end_char: int, min_chars: int = 240,
                  max_chars: int = 600) -> tuple[str, str, str]:
    """(before, quote, after): the quote text[start_char:end_char] within its paragraph, widened by whole
    neighbouring paragraphs while a side has under min_chars, each side cut to about max_chars at a word
    boundary with "…" where cut."""
    start = text.rfind("\n\n", 0, start_char)
    start = 0 if start < 0 else start + 2
    while start > 0 and start_char - start < min_chars:
        previous = text.rfind("\n\n", 0, start - 2)
        start = 0 if previous < 0 else previous + 2
    end = text.find("\n\n", end_char)
    end = len(text) if end < 0 else end
    while end < len(text) and end - end_char < min_chars:
        following = text.find("\n\n", end + 2)
        end = len(text) if following < 0 else following
    before, after = text[start:start_char], text[end_char:end]
    if len(before) > max_chars:
        cut = before[-max_chars:]
        before = "…" + (cut[cut.find(" ") + 1:] if " " in cut else cut)
    if len(after) > max_chars:
        cut = after[:max_chars]
        after = (cut[: cut.rfind(" ")] if " " in cut else cut) + "…"
    return before, text[start_char:end_char], after
