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


def test_plain_output_and_errors_are_messages_not_tracebacks(tmp_path: Path, corpus_dir: Path) -> None:
    bad = _rag("ingest", str(corpus_dir), "--index", str(tmp_path / "idx"), "--chroma-url", "http://127.0.0.1:9")
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


def _one_line_error(run: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    """A user's mistake: exit `code`, and one line on stderr saying what is wrong and what to do."""
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.startswith(("rag: error:", "app: error:"))]
    assert len(lines) == 1 and says in lines[0], run.stderr
    assert "Traceback" not in run.stderr, run.stderr


def test_a_missing_index_is_an_error_not_an_empty_corpus(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    _one_line_error(_rag("ask", "who requested CSTO troops?", "--index", str(typo)), 1,
                    f"no index at {typo}: run `rag ingest PATH --index {typo}` first")
    assert not typo.exists()  # asking never creates an index


def test_wrong_and_empty_paths_fail_the_ingest(tmp_path: Path, corpus_dir: Path) -> None:
    index = str(tmp_path / "idx")
    missing = tmp_path / "no-such-folder"
    run = _rag("ingest", str(missing), str(corpus_dir), "--index", index)
    _one_line_error(run, 1, f"no such file or folder: {missing}")
    assert "added 1," in run.stdout and "Index: 1 document, " in run.stdout  # the rest was ingested
    empty = tmp_path / "empty"
    empty.mkdir()
    run = _rag("ingest", str(empty), "--index", index)
    _one_line_error(run, 1, "nothing was ingested")
    assert f"skipped {empty}: the folder holds no files" in run.stderr


def test_impossible_dates_are_told_before_anything_loads(tmp_path: Path, corpus_dir: Path) -> None:
    for flag, value, says in (("--as-of", "2025-13-45", "month must be in 1..12"),
                              ("--since", "2025-02-30", "day is out of range for month"),
                              ("--until", "next tuesday", "next tuesday")):
        _one_line_error(_rag("ask", "who?", "--index", str(tmp_path / "none"), flag, value), 1, says)


def test_a_closed_pipe_ends_quietly(tmp_path: Path, corpus_dir: Path) -> None:
    index = str(tmp_path / "idx")
    assert _rag("ingest", str(corpus_dir), "--index", index).returncode == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(f"{sys.executable} -m rag.cli ask 'Who requested CSTO troops?' --index {index} | head -c 20",
                         shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                         executable="/bin/bash")
    assert len(run.stdout) == 20 and "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr, run.stderr
    plain = _rag("ask", "Who requested CSTO troops?", "--index", index)
    assert plain.returncode == 0 and "\nShort answer: " in plain.stdout  # the page shows it too


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _one_line_error(_rag("serve", "--index", str(tmp_path / "idx"), "--port", str(port)), 1,
                        f"cannot serve on 127.0.0.1:{port} (the port is in use): pass --port with a free port")


def test_ingest_shows_a_progress_bar_under_a_terminal(tmp_path: Path) -> None:
    """Under a terminal, even one that reports no size (`script`'s bare pty, as in many containers), the ingest
    draws its bar; piped, it does not."""
    import shutil

    script = shutil.which("script")
    assert script, "`script` (util-linux) runs the CLI under a pty here"
    corpus = tmp_path / "many"
    corpus.mkdir()
    for i in range(40):
        (corpus / f"s{i}.txt").write_text(f"Story {i}\n\nThe council of town {i} voted to build a bridge.\n")
    command = f"{sys.executable} -m rag.cli ingest {corpus} --index {tmp_path / 'idx'}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([script, "-qec", command, "/dev/null"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout
    assert "ingest: 100%|" in run.stdout and "added 40," in run.stdout, run.stdout
    piped = _rag("ingest", str(corpus), "--index", str(tmp_path / "idx2"))
    assert piped.returncode == 0 and "ingest:" not in piped.stderr
