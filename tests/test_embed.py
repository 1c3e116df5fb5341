"""Embedding backends: torch (sentence-transformers) and the int8 ONNX export, with the real bundled model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rag import Assistant
from rag.embed import Encoder
from rag.errors import IndexMismatchError
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


def test_auto_backend_follows_the_index(tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "torch-idx", embed_backend="torch") as assistant:
        assistant.ingest([corpus_dir])
    with Assistant(index_dir=tmp_path / "torch-idx") as assistant:  # auto: what the index was built with
        assert assistant.embed_model.backend == "torch"
        assert "Tokayev" in assistant.ask("Who requested CSTO troops?").text
    with pytest.raises(IndexMismatchError, match="re-ingest"):
        Assistant(index_dir=tmp_path / "torch-idx", embed_backend="onnx")
    with Assistant(index_dir=tmp_path / "new-idx") as assistant:
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
