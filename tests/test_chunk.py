"""Chunking: sentence-aware, under the token budget, offsets exact."""

from __future__ import annotations

import json

import pytest

from ingest.chunk import Chunker, token_counter
from ingest.clean import clean_text
from rag.text.sentences import sentence_spans
from rag.types import Article
from tests.conftest import SHARED_DATA


def _check(article: Article, chunker: Chunker) -> None:
    chunks = chunker.run(article)
    assert chunks, article.id
    count = token_counter()
    for chunk in chunks:
        assert article.text[chunk.start_char : chunk.end_char] == chunk.text
        assert count(chunk.text) <= chunker.max_tokens + 2  # joins may add a token
    ids = [c.id for c in chunks]
    assert len(set(ids)) == len(ids)
    # Every sentence lies inside some chunk.
    for start, end in sentence_spans(article.text):
        assert any(c.start_char <= start and end <= c.end_char for c in chunks) or count(article.text[start:end]) > chunker.max_tokens


@pytest.mark.parametrize("max_tokens", [16, 60, 160, 400])
def test_offsets_hold_for_every_seed_chunk(seed_text: str, max_tokens: int) -> None:
    _check(clean_text(seed_text, doc_id="seed"), Chunker(max_tokens=max_tokens, overlap_sentences=1))


def test_offsets_hold_on_real_wikipedia_articles() -> None:
    path = SHARED_DATA / "squad2-dev" / "dev-v2.0.derived-from-explorer.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: the shared data folder must sit beside the repo")
    data = json.loads(path.read_text())["data"][:5]
    for doc in data:
        text = "\n\n".join(p["context"] for p in doc["paragraphs"])
        _check(clean_text(text, doc_id=doc["title"], title=doc["title"]), Chunker(max_tokens=120))


def test_a_sentence_longer_than_the_budget_is_cut_at_words() -> None:
    text = " ".join(f"word{i}" for i in range(300)) + "."
    article = Article(id="long", text=text)
    chunks = Chunker(max_tokens=32, overlap_sentences=0).run(article)
    assert len(chunks) > 5
    assert all(article.text[c.start_char : c.end_char] == c.text for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_chunk_ids_derive_from_content(seed_text: str) -> None:
    article = clean_text(seed_text, doc_id="seed")
    first = [c.id for c in Chunker().run(article)]
    assert first == [c.id for c in Chunker().run(article)]
    other = clean_text(seed_text.replace("26 protesters", "27 protesters"), doc_id="seed")
    changed = [c.id for c in Chunker().run(other)]
    assert changed != first and set(changed) & set(first)
