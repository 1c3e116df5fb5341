"""The `rag` console script, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _rag(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_ingest_then_ask_json_contract(tmp_path: Path, corpus_dir: Path) -> None:
    index = str(tmp_path / "idx")
    ingest = _rag("ingest", str(corpus_dir), "--index", index, "--json")
    assert ingest.returncode == 0, ingest.stderr
    report = json.loads(ingest.stdout)
    assert report["added"] == 1 and report["chunks"] > 0 and report["skipped"] == []

    ask = _rag("ask", "who requested CSTO troops?", "--index", index, "--json", "--top-k", "3")
    assert ask.returncode == 0, ask.stderr
    out = json.loads(ask.stdout)
    assert out["schema"] == 1 and set(out) >= {"question", "answer", "abstained", "citations", "passages", "timings_ms"}
    assert set(out["timings_ms"]) == {"retrieve", "answer", "total"}
    assert not out["abstained"] and 1 <= len(out["passages"]) <= 3  # the seed's chunks merge once widened
    first = out["citations"][0]
    assert set(first) >= {"id", "doc_id", "title", "url", "source", "published", "quote", "start_char", "end_char"}
    assert first["id"] == 1 and "[1]" in out["answer"]
    assert first["quote"].startswith("The President of Kazakhstan asked for help")
    assert "Tokayev" in out["answer"]
    assert first["source"] == "UNIAN"
    assert set(out["passages"][0]) >= {"doc_id", "chunk_id", "title", "url", "text", "score"}


def test_plain_output_and_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    bad = _rag("ask", "anything", "--index", str(tmp_path / "idx"), "--chroma-url", "http://127.0.0.1:9")
    assert bad.returncode == 1
    assert bad.stderr.startswith("rag: error: the Chroma server at http://127.0.0.1:9 is unreachable")
    assert "Traceback" not in bad.stderr
    usage = _rag("ask")
    assert usage.returncode == 2


def test_help_lists_commands_without_loading_models_or_stores() -> None:
    out = _rag("--help")
    assert out.returncode == 0
    for command in ("ingest", "ask", "serve", "eval"):
        assert command in out.stdout
    # What makes `rag --help` (and every error message) quick: none of the heavy libraries is imported for it.
    code = ("import sys\nfrom rag.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = ('torch', 'llama_index', 'chromadb', 'onnxruntime', 'sentence_transformers', 'gradio')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy), file=sys.stderr)")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0 and loaded.stderr.strip().splitlines()[-1] == "[]", loaded.stderr[-2000:]
