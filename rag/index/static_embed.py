"""Static chunk vectors: one learned vector per word piece, a text's vector the normalised mean of its pieces'.

What ingestion embeds only has to bring candidate chunks into the pool: keyword search, the sentence re-ranker
(the transformer, at query time) and the reader decide the answer. A static table distilled from the bundled
MiniLM (evals/distill_static.py, model2vec's method: each word piece through the transformer alone, PCA, rare
pieces weighted up) embeds a chunk a few hundred times faster than the transformer, with numpy and the tokenizer
only. The table is committed under models/static/.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

STATIC_DIR = Path(__file__).resolve().parents[2] / "models" / "static"
TABLE_FILE = "table.int8.npz"
MAX_TOKENS = 512  # word pieces read of a text; a 160-token chunk has about 200


class StaticEncoder:
    """Unit-length vectors from a word-piece table (`models/static/`, rows int8 with a scale each), loaded on first
    use and kept as float16 (16 MB for MiniLM's 30,522 pieces x 256)."""

    backend = "static"

    def __init__(self, folder: Path = STATIC_DIR, max_tokens: int = MAX_TOKENS) -> None:
        info_path = folder / "static.json"
        if not (folder / TABLE_FILE).is_file() or not info_path.is_file() or not (folder / "tokenizer.json").is_file():
            raise ConfigError(f"the static chunk encoder needs {TABLE_FILE}, static.json and tokenizer.json in "
                              f"{folder} (python -m evals.distill_static rebuilds them)")
        self.folder = folder
        self.info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
        self.model_name = str(self.info["model_id"])
        self.dimension = int(self.info["dims"])
        self.max_tokens = max_tokens
        self._table: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._table is None:
                import numpy as np
                from tokenizers import Tokenizer

                with np.load(self.folder / TABLE_FILE) as saved:
                    scales = saved["scales"].astype(np.float32)[:, None]
                    self._table = (saved["rows"].astype(np.float32) * scales).astype(np.float16)
                tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                tokenizer.no_padding()
                tokenizer.enable_truncation(self.max_tokens)
                self._tokenizer = tokenizer
        return self._table, self._tokenizer

    def encode(self, texts: list[str]) -> Any:
        """Vectors in the order of `texts`: the sum of each text's word-piece rows (the first `max_tokens`), at unit
        length; a text without a word piece gets zeros."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        table, tokenizer = self._load()
        return table_vectors(table, [e.ids for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)])


def table_vectors(table: Any, id_lists: list[list[int]]) -> Any:
    """One unit-length row per list of word-piece ids: the sum of the table's rows for them (zeros for none)."""
    import numpy as np

    out = np.zeros((len(id_lists), table.shape[1]), dtype=np.float32)
    for row, ids in enumerate(id_lists):
        if ids:
            out[row] = table[ids].sum(axis=0, dtype=np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
