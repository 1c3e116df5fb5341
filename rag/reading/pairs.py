"""The trained reader's input: a question and one candidate sentence with a little context, as word-piece ids.

The same function encodes training examples (evals/train_reader.py) and questions at run time
(rag/reading/trained.py), so the model always sees one layout:

    [CLS] question [SEP] sentence [SEP] title · preceding sentence [SEP]

Segment ids are 0 for the question and 1 after it. Only the sentence's word pieces may hold the short answer;
`offsets` maps each of them back to characters of the sentence. Needs `tokenizers` only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_TOKENS = 128  # the whole pair, in word pieces
MAX_QUESTION_TOKENS = 40
MAX_TITLE_TOKENS = 8
MAX_PREVIOUS_TOKENS = 16


@dataclass(frozen=True)
class EncodedPair:
    ids: list[int]
    type_ids: list[int]
    sentence_from: int  # index of the sentence's first word piece in `ids`
    offsets: list[tuple[int, int]]  # (start_char, end_char) in the sentence of each of its word pieces


def encode_pair(tokenizer: Any, question: str, sentence: str, title: str = "", previous: str = "",
                max_tokens: int = MAX_TOKENS) -> EncodedPair:
    """`tokenizer`: a `tokenizers.Tokenizer` (the bundled model's tokenizer.json), special tokens off.
    `sentence` is one sentence, or a window of several (rag/reading/windows.py) for a window reader."""
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    q = tokenizer.encode(question, add_special_tokens=False).ids[:MAX_QUESTION_TOKENS]
    context: list[int] = []
    if title:
        context += tokenizer.encode(title, add_special_tokens=False).ids[:MAX_TITLE_TOKENS]
    if previous:
        context += tokenizer.encode(previous, add_special_tokens=False).ids[:MAX_PREVIOUS_TOKENS]
    s = tokenizer.encode(sentence, add_special_tokens=False)
    room = max_tokens - len(q) - len(context) - 4
    if room < 16:  # a long question and context: the sentence matters more than the context
        context = context[: max(0, len(context) - (16 - room))]
        room = max_tokens - len(q) - len(context) - 4
    s_ids, s_offsets = s.ids[:room], [(int(a), int(b)) for a, b in s.offsets[:room]]
    ids = [cls_id, *q, sep_id, *s_ids, sep_id, *context, sep_id]
    type_ids = [0] * (len(q) + 2) + [1] * (len(s_ids) + len(context) + 2)
    return EncodedPair(ids, type_ids, len(q) + 2, s_offsets)
