"""Retrieval: from a question to a pool of candidate passages. Hybrid dense + keyword search fused by
reciprocal rank, with the time prior (`hybrid.py`: the `PassageRetriever` interface and its `Retriever`), the
period a question points to (`timeframe.py`), and near-duplicate copies collapsed (`dedupe.py`)."""
