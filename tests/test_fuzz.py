"""Property-based fuzzing of cleaning, chunking and sentence splitting (hypothesis).

Whatever the input (arbitrary Unicode, control characters, very long lines, no sentence punctuation, right-to-left
scripts, emoji, markup fragments), cleaning either returns an article or raises the project's own IngestError,
and every chunk satisfies the offset invariant `article.text[c.start_char:c.end_char] == c.text` within the
token budget.
"""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.chunk import Chunker, token_counter
from ingest.clean import clean_html, clean_markdown, clean_text
from rag.errors import IngestError
from rag.text.sentences import sentence_spans
from rag.types import Article

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)

# Pieces news text is made of, and pieces that break naive code: RTL scripts, emoji with joiners, combining marks,
# zero-width and bidi controls, NUL and other C0/C1 controls, lone line/paragraph separators, CJK without spaces.
_PIECES = [
    "The minister said on Monday that 41 trawlers were in port.", "Dr. Smith arrived at 3 p.m. on Jan. 5",
    "“Quoted,” he said.", "U.S.", "e.g.", "...", "!?", "\n", "\n\n", "\r\n", "\t", " ", "\u00a0",
    "مرحبا بالعالم. كيف حالك؟", "שלום עולם.", "\u202e\u202d\u200f\u200e", "\u200b\u200c\u200d\ufeff",
    "👩‍👩‍👧‍👦🇰🇿🏳️‍🌈", "e\u0301\u0301\u0301", "中文没有空格的句子。第二句。", "\x00\x01\x07\x1b\x7f\x85\x9f",
    "\u2028\u2029", "<b>bold</b>", "<script>alert(1)</script>", "&amp;&lt;&#0;&#xD800;", "# Heading", "---",
    "Photo: Reuters", "Read more", "a" * 3000, "word " * 700, "1,234.5%", "\ud7ff\ue000\U0010ffff",
]
texts = st.one_of(
    st.text(min_size=0, max_size=4000),
    st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=200)), max_size=25).map(" ".join),
)


def _check_chunks(article: Article, max_tokens: int, overlap: int) -> None:
    chunker = Chunker(max_tokens=max_tokens, overlap_sentences=overlap)
    chunks = chunker.run(article)
    count = token_counter()
    assert chunks or not article.text.strip()
    for chunk in chunks:
        assert 0 <= chunk.start_char < chunk.end_char <= len(article.text)
        assert article.text[chunk.start_char:chunk.end_char] == chunk.text
        assert count(chunk.text) <= max_tokens + 2
    assert len({c.id for c in chunks}) == len(chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))


@FUZZ
@given(text=texts, max_tokens=st.sampled_from([16, 40, 160]), overlap=st.integers(0, 2))
def test_clean_text_then_chunk_keeps_offsets(text: str, max_tokens: int, overlap: int) -> None:
    try:
        article = clean_text(text, doc_id="fuzz")
    except IngestError:
        return
    assert article.text.strip()
    _check_chunks(article, max_tokens, overlap)


@FUZZ
@given(text=texts)
def test_clean_markdown_and_html_raise_only_ingest_errors(text: str) -> None:
    for clean in (clean_markdown, clean_html):
        try:
            article = clean(text, doc_id="fuzz")
        except IngestError:
            continue
        _check_chunks(article, 60, 1)


@FUZZ
@given(text=texts, max_tokens=st.sampled_from([16, 160]))
def test_chunker_on_raw_text_keeps_offsets(text: str, max_tokens: int) -> None:
    """The chunker alone, on text that never went through cleaning (the API accepts any Article)."""
    _check_chunks(Article(id="raw", text=text), max_tokens, 1)


@FUZZ
@given(text=texts)
def test_sentence_spans_are_ordered_and_inside_the_text(text: str) -> None:
    spans = sentence_spans(text)
    last = 0
    for start, end in spans:
        assert last <= start < end <= len(text)
        last = end


def _clean_and_chunk_seconds(text: str) -> float:
    """Seconds to clean and chunk the text (0 when it is refused), with the chunks' offsets checked."""
    started = time.perf_counter()
    try:
        article = clean_text(text, doc_id="big")
    except IngestError:
        return 0.0
    chunks = Chunker(max_tokens=160).run(article)
    assert all(article.text[c.start_char:c.end_char] == c.text for c in chunks)
    return time.perf_counter() - started


def test_pathological_shapes_take_no_longer_than_ordinary_prose() -> None:
    """Shapes that make regex-based splitters backtrack: no punctuation at all, one 2 MB line, a wall of dots.
    Each is timed against ordinary sentences of the same length in the same run, so the bound is a ratio (a
    quadratic splitter is hundreds of times slower), not seconds on some machine."""
    prose = ("The minister said on Tuesday that the talks would resume next week. Protesters gathered outside "
             "parliament, and police closed two streets. ") * 15_000  # about 2 MB
    shapes = {
        "one long line without punctuation": "word " * 400_000,
        "a single 2 MB token": "x" * 2_000_000,
        "dots and spaces": ". " * 300_000,
        "a wall of dots": "." * 200_000 + " Then it ends.",  # was quadratic in the sentence splitter (28 s / 50k)
        "abbreviation soup": "U.S. e.g. Dr. Mr. " * 50_000,
        "nested quotes and brackets": "(“[«" * 100_000 + "»]”)" * 100_000,
    }
    baseline = _clean_and_chunk_seconds(prose)
    for name, text in shapes.items():
        seconds = _clean_and_chunk_seconds(text)
        assert seconds < 10 * baseline + 1.0, f"{name} took {seconds:.1f} s, ordinary prose {baseline:.1f} s"
