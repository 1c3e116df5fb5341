"""Client/server Chroma: a real `chroma run` on a loopback port; ingest and ask through HttpClient."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Assistant
from rag.errors import BackendError
from tests.services import close_chroma_client_leaks, free_port, running


@pytest.fixture(autouse=True)
def _no_leaked_chroma_sockets() -> Iterator[None]:
    """After each test, so the sockets chromadb leaves are collected in the test that made them."""
    yield
    close_chroma_client_leaks()


def test_ingest_and_ask_through_a_chroma_server(tmp_path: Path, corpus_dir: Path) -> None:
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "server")],
                 f"{url}/api/v2/heartbeat", tmp_path / "chroma.log"):
        writer = Assistant(index_dir=tmp_path / "idx", chroma_url=url)
        report = writer.ingest([corpus_dir])
        assert report.added == 1 and report.chunks > 0
        assert writer.vectors.count() == report.chunks
        assert not (tmp_path / "idx" / "chroma").exists()  # vectors live on the server only
        reader = Assistant(index_dir=tmp_path / "idx", chroma_url=url)
        answer = reader.ask("Who requested CSTO troops?")
        assert not answer.abstained and "Tokayev" in answer.text
        assert writer.ingest([corpus_dir]).embedded == 0


def test_ingest_in_one_process_query_from_another(tmp_path: Path, corpus_dir: Path) -> None:
    """The deployment the README describes: `rag ingest` and the query side are separate processes sharing the
    Chroma server (vectors) and the index folder (catalog + BM25 keyword index, SQLite)."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    rag = str(Path(sys.executable).parent / "rag")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_CHROMA_URL": url, "RAG_INDEX_DIR": str(tmp_path / "idx")}
    with running([chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "server")],
                 f"{url}/api/v2/heartbeat", tmp_path / "chroma.log"):
        ingest = subprocess.run([rag, "ingest", str(corpus_dir), "--json"], env=env, capture_output=True, text=True,
                                timeout=300)
        assert ingest.returncode == 0, ingest.stderr
        assert json.loads(ingest.stdout)["chunks"] > 0
        for mode in ("hybrid", "dense", "keyword"):  # keyword: BM25 alone, from the shared catalog
            ask = subprocess.run([rag, "ask", "Who requested CSTO troops?", "--json"],
                                 env={**env, "RAG_RETRIEVAL": mode}, capture_output=True, text=True, timeout=300)
            assert ask.returncode == 0, ask.stderr
            answer = json.loads(ask.stdout)
            assert not answer["abstained"] and "Tokayev" in answer["answer"], (mode, answer)


def test_unreachable_chroma_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="unreachable"):
        Assistant(index_dir=tmp_path / "idx", chroma_url=f"http://127.0.0.1:{free_port()}")
