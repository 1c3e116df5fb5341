"""An ingest killed part-way leaves a consistent index, and the next run completes it."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import Assistant
from tests.conftest import REPO, SHARED_DATA


def _write_corpus(folder: Path, count: int) -> None:
    data = json.loads((SHARED_DATA / "squad2-dev" / "dev-v2.0.derived-from-explorer.json").read_text())["data"]
    paragraphs = [(doc["title"], p["context"]) for doc in data for p in doc["paragraphs"]]
    folder.mkdir()
    for i, (title, text) in enumerate(paragraphs[:count]):
        (folder / f"{i:03d}.txt").write_text(f"{title.replace('_', ' ')} part {i}\n\n{text}\n")


def _committed_docs(index: Path) -> int:
    db = index / "catalog.sqlite3"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _start_ingest(folder: Path, index: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAG_INGEST_BATCH_CHARS": "1500", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ingest", str(folder), "--index", str(index), "--json"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _assert_consistent_partial(index: Path, expected_ids: dict[str, set[str]]) -> None:
    """Every committed document is complete (all its chunks, and those only, are in Chroma); the only
    other vectors are ones marked pending, which retrieval never returns."""
    assistant = Assistant(index_dir=index)
    catalog_ids = set(assistant.catalog.chunk_ids())
    chroma_ids = set(assistant.vectors.all_ids())
    assert catalog_ids <= chroma_ids
    assert chroma_ids - catalog_ids <= set(assistant.catalog.pending_deletes())
    for doc in assistant.documents():
        assert set(assistant.catalog.chunk_ids(doc.doc_id)) == expected_ids[doc.doc_id]
    assistant.close()


@pytest.mark.slow
def test_killed_ingest_leaves_index_consistent_and_rerun_completes(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    _write_corpus(folder, 40)
    clean = Assistant(index_dir=tmp_path / "clean")
    clean.ingest([folder])
    expected = {d.doc_id: set(clean.catalog.chunk_ids(d.doc_id)) for d in clean.documents()}
    assert len(expected) == 40

    index = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for round_ in range(4):
        target = rng.randint(1, 39)
        proc = _start_ingest(folder, index)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _committed_docs(index) < target and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT if round_ == 0 else signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        _assert_consistent_partial(index, expected)
    assert kills >= 3

    final = Assistant(index_dir=index)
    report = final.ingest([folder])
    assert not report.skipped
    assert {d.doc_id: set(final.catalog.chunk_ids(d.doc_id)) for d in final.documents()} == expected
    assert set(final.vectors.all_ids()) == set(clean.vectors.all_ids())
    assert not final.catalog.pending_deletes()
