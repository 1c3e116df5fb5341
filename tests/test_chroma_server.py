"""Client/server Chroma: a real `chroma run` on a loopback port; ingest and ask through HttpClient."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from rag import Assistant
from rag.errors import BackendError
from tests.services import free_port, running


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


def test_unreachable_chroma_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="unreachable"):
        Assistant(index_dir=tmp_path / "idx", chroma_url=f"http://127.0.0.1:{free_port()}")
