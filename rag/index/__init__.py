"""The index: what ingest writes and retrieval reads. The catalog (SQLite: articles, chunks with their offsets,
files, the keyword index; `catalog.py`), the vector store (Chroma, embedded or a server; `store.py`), the
encoders that make the vectors (sentence-transformers or int8 ONNX; `embed.py`, `onnx_embed.py`, and
`llama_embedding.py`, the same encoder as a llama-index embedding), and `writer.py`, the one way in for ingest."""
