"""Helpers for the fault tests: a multi-file corpus from real data, and the index's whole state to compare."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rag import Assistant
from tests.conftest import REPO, SHARED_DATA


def write_corpus(folder: Path, count: int, start: int = 0) -> None:
    """`count` articles, one per file: SQuAD 2.0 dev paragraphs (real Wikipedia text) with their titles."""
    data = json.loads((SHARED_DATA / "squad2-dev" / "dev-v2.0.derived-from-explorer.json").read_text())["data"]
    paragraphs = [(doc["title"], p["context"]) for doc in data for p in doc["paragraphs"]]
    folder.mkdir(parents=True, exist_ok=True)
    for i, (title, text) in enumerate(paragraphs[start:start + count], start=start):
        (folder / f"{i:04d}.txt").write_text(f"{title.replace('_', ' ')} part {i}\n\n{text}\n")


@dataclass(frozen=True)
class IndexState:
    documents: dict[str, frozenset[str]]  # doc_id -> its chunk ids (catalog)
    chroma_ids: frozenset[str]
    keyword_ids: frozenset[str]  # the BM25 (FTS5) rows
    pending: frozenset[str]
    duplicates: int  # chunk ids listed more than once in Chroma or in the keyword index


def index_state(assistant: Assistant) -> IndexState:
    chroma = assistant.vectors.all_ids()
    with sqlite3.connect(assistant.catalog.path) as db:
        keyword = [row[0] for row in db.execute("SELECT chunk_id FROM chunks_fts")]
    return IndexState(
        documents={d.doc_id: frozenset(assistant.catalog.chunk_ids(d.doc_id)) for d in assistant.documents()},
        chroma_ids=frozenset(chroma),
        keyword_ids=frozenset(keyword),
        pending=frozenset(assistant.catalog.pending_deletes()),
        duplicates=(len(chroma) - len(set(chroma))) + (len(keyword) - len(set(keyword))),
    )


def consistency_faults(state: IndexState) -> list[str]:
    """What is inconsistent inside one index ([] when nothing): every live chunk has its vector and its keyword
    row; the only other vectors are pending ones (never returned by retrieval); nothing is listed twice."""
    live = frozenset().union(*state.documents.values()) if state.documents else frozenset()
    faults = []
    if live - state.chroma_ids:
        faults.append(f"{len(live - state.chroma_ids)} live chunks have no vector")
    if state.chroma_ids - live - state.pending:
        faults.append(f"{len(state.chroma_ids - live - state.pending)} orphan vectors")
    if state.keyword_ids != live:
        faults.append(f"keyword index differs from the live chunks by {len(state.keyword_ids ^ live)}")
    if state.duplicates:
        faults.append(f"{state.duplicates} duplicated ids")
    return faults


def same_as_clean(state: IndexState, clean: IndexState) -> list[str]:
    """What differs from a clean ingest of the same files ([] when nothing), consistency faults included."""
    faults = consistency_faults(state)
    if state.documents != clean.documents:
        faults.append(f"documents differ: {sorted(set(state.documents) ^ set(clean.documents))[:5]} "
                      f"({len(state.documents)} vs {len(clean.documents)})")
    if state.chroma_ids != clean.chroma_ids:
        faults.append(f"vectors differ by {len(state.chroma_ids ^ clean.chroma_ids)}")
    if state.pending:
        faults.append(f"{len(state.pending)} pending ids left after a complete run")
    return faults


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
