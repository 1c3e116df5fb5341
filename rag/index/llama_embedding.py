"""The LlamaIndex face of rag.index.embed.Encoder, for the ingestion pipeline and the LlamaIndex baseline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.index.embed import Encoder, TextEncoder

if TYPE_CHECKING:
    import numpy as np


class SentenceEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model over a TextEncoder: a given one (shared, so the model loads once; the static
    table or the transformer), or a new transformer Encoder for (model, backend)."""

    backend: str = "torch"
    _encoder: TextEncoder = PrivateAttr()

    def __init__(self, model: str = "", embed_batch_size: int = 64, backend: str = "torch", cache_dir: str = "",
                 encoder: TextEncoder | None = None, **kwargs: Any) -> None:
        encoder = encoder or Encoder(model, batch_size=embed_batch_size, backend=backend, cache_dir=cache_dir)
        super().__init__(  # type: ignore[call-arg]  # pydantic fields
            model_name=encoder.model_name, embed_batch_size=embed_batch_size, backend=encoder.backend, **kwargs
        )
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "SentenceEmbedding"

    @property
    def dimension(self) -> int:
        return self._encoder.dimension

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._encoder.encode(texts)

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self.encode([query])[0]]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return [float(x) for x in self.encode([text])[0]]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.encode(texts)]
