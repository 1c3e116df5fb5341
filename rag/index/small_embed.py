"""The distilled chunk encoder: the bundled MiniLM cut to its first layers, reading a chunk's first word pieces,
trained to put a chunk where the whole model puts it (evals/distill_small.py; committed under models/small-encoder/).

Only chunks are embedded with it. The question is embedded by the whole model, into the same space, for the dense
search (the sentence re-ranker embeds the question with that model anyway), so nothing at query time gets
smaller: ingestion does, several times faster than the whole model at 128 word pieces.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

SMALL_DIR = Path(__file__).resolve().parents[2] / "models" / "small-encoder"
MODEL_FILE = "model.int8.onnx"


class SmallEncoder:
    """Unit-length chunk vectors from the committed int8 ONNX student (`models/small-encoder/`), loaded on first use."""

    backend = "onnx"

    def __init__(self, folder: Path = SMALL_DIR) -> None:
        info_path = folder / "small.json"
        if not (folder / MODEL_FILE).is_file() or not info_path.is_file() or not (folder / "tokenizer.json").is_file():
            raise ConfigError(f"the distilled chunk encoder needs {MODEL_FILE}, small.json and tokenizer.json in "
                              f"{folder} (python -m evals.distill_small rebuilds them)")
        self.folder = folder
        self.info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
        self.model_name = str(self.info["model_id"])
        self.dimension = int(self.info["dims"])
        self.max_tokens = int(self.info["max_tokens"])
        self._model: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def digest(folder: Path) -> str:
        """What names the weights in the model id, taken at distillation: an index records the id, and refuses other
        weights. Re-storing the same integers (evals/int8_weights.py) keeps the id small.json holds."""
        return hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()[:8]

    def encode(self, texts: list[str]) -> Any:
        """Vectors in the order of `texts`, each text's first `max_tokens` word pieces read."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            if self._model is None:
                from rag.index.onnx_embed import OnnxEncoder

                self._model = OnnxEncoder(str(self.folder), self.folder, max_tokens=self.max_tokens,
                                          onnx_path=self.folder / MODEL_FILE, memory_arena=True)
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32)
