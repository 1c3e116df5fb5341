"""Faults from outside: a read-only index directory, a full disk, the Chroma server going away mid-ingest and
mid-question, two ingests at once, an index from an older version, a damaged catalog. Each ends in a clear error
and an index that works again once the fault is gone.

The read-only directory and the full disk are real: a read-only bind mount and a small tmpfs (the tests run as
root here and in CI; they say so and fail when mount is not allowed).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag import Assistant
from rag.errors import BackendError, IndexMismatchError, IndexStorageError
from tests.index_checks import consistency_faults, index_state, run_cli, same_as_clean, write_corpus
from tests.services import close_chroma_client_leaks, free_port, wait_http

QUESTION = "Who requested CSTO troops?"


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"mount {' '.join(args)} failed ({done.stderr.strip()}): these fault tests need root (as in CI)")


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    _mount("--bind", str(folder), str(folder))
    try:
        _mount("-o", "remount,ro,bind", str(folder))
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextmanager
def small_disk(folder: Path, size_mb: int) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder))
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _fill(folder: Path, leave_bytes: int) -> Path:
    """Fill the filesystem of `folder` until only `leave_bytes` are free; returns the filler file."""
    filler = folder / "filler.bin"
    free = shutil.disk_usage(folder).free - leave_bytes
    with open(filler, "wb") as f:
        block = b"\0" * (1 << 20)
        while free > 0:
            f.write(block[:min(free, len(block))])
            free -= len(block)
    return filler



@pytest.fixture(autouse=True)
def _no_leaked_chroma_sockets() -> Iterator[None]:
    """After each test, so the sockets chromadb leaves are collected in the test that made them."""
    yield
    close_chroma_client_leaks()

@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faults") / "docs"
    write_corpus(folder, 60)
    return folder


@pytest.fixture(scope="module")
def clean(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    with Assistant(index_dir=tmp_path_factory.mktemp("clean") / "index") as assistant:
        assistant.ingest([corpus])
        return index_state(assistant)


@pytest.mark.slow
def test_read_only_index_directory(tmp_path: Path, corpus_dir: Path) -> None:
    index = tmp_path / "ro" / "index"
    assert run_cli("ingest", str(corpus_dir), "--index", str(index)).returncode == 0
    with read_only(tmp_path / "ro"):
        for args in (["ask", QUESTION], ["ingest", str(corpus_dir)]):
            done = run_cli(*args, "--index", str(index))
            assert done.returncode == 1, done.stderr
            assert "read-only: make it writable" in done.stderr and "Traceback" not in done.stderr, done.stderr
        with pytest.raises(IndexStorageError, match="read-only"):
            Assistant(index_dir=index)
    with Assistant(index_dir=index) as assistant:  # the fault gone: as before
        assert "Tokayev" in assistant.ask(QUESTION).text
        assert assistant.ingest([corpus_dir]).unchanged == 1
        assert consistency_faults(index_state(assistant)) == []


@pytest.mark.slow
def test_read_only_copy_of_an_index_in_use(tmp_path: Path, corpus_dir: Path) -> None:
    """An index copied while a process had it open (its -wal and -shm files beside it), on a read-only disk: one
    line saying what to do, from `ask` and `ingest`, never SQLite's traceback; the copy, made writable, answers."""
    source = tmp_path / "live"
    with Assistant(index_dir=source) as live:
        live.ingest([corpus_dir])
        live.ask(QUESTION)
        shutil.copytree(source, tmp_path / "ro" / "index")
    copy = tmp_path / "ro" / "index"
    assert (copy / "catalog.sqlite3-wal").exists() and (copy / "catalog.sqlite3-shm").exists()
    with read_only(tmp_path / "ro"):
        for args in (["ask", QUESTION], ["ingest", str(corpus_dir)]):
            done = run_cli(*args, "--index", str(copy))
            assert done.returncode == 1, (args, done.stdout, done.stderr)
            assert "read-only: make it writable, or copy the index to a writable folder" in done.stderr, done.stderr
            assert "Traceback" not in done.stderr, done.stderr
    with Assistant(index_dir=copy) as assistant:
        assert "Tokayev" in assistant.ask(QUESTION).text


@pytest.mark.slow
def test_disk_full_mid_ingest(tmp_path: Path, corpus: Path, clean: object) -> None:
    """The disk fills while an ingest runs: it stops before a batch that might not fit (embedded Chroma accepts
    writes it cannot apply on a full disk, then fails every read: it must never get there), keeps what it had
    committed, still answers, and completes once space is freed."""
    disk = tmp_path / "disk"
    min_free = 8 * 2**20
    with small_disk(disk, 100):
        index = disk / "index"
        first = sorted(corpus.iterdir())[:5]
        with Assistant(index_dir=index, ingest_batch_chars=2000, min_free_bytes=min_free) as assistant:
            assert assistant.ingest(first).added == 5
            filler = _fill(disk, min_free + 8000 + 400_000)  # room for a few batches, not for all
            with pytest.raises(IndexStorageError, match="the disk is full"):
                assistant.ingest([corpus])
            state = index_state(assistant)
            assert consistency_faults(state) == []  # what was committed is whole
            assert 5 < len(state.documents) < 60, len(state.documents)  # it stopped mid-way
            assert "NATO" in assistant.ask("Which alliance did the crisis create a rift within?").text  # and it still answers
        done = run_cli("ingest", str(corpus), "--index", str(index))  # the default margin, 64 MB, is not free
        assert done.returncode == 1 and "disk is full" in done.stderr and "Traceback" not in done.stderr, done.stderr
        filler.unlink()  # the fault gone: the same command completes the index
        with Assistant(index_dir=index) as assistant:
            report = assistant.ingest([corpus])
            assert not report.skipped
            assert same_as_clean(index_state(assistant), clean) == []  # type: ignore[arg-type]


def _start_chroma(port: int, path: Path, log: Path) -> subprocess.Popen[bytes]:
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path)],
                                stdout=out, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", 60, proc)
    return proc


def _committed(index: Path) -> int:
    try:
        with sqlite3.connect(index / "catalog.sqlite3", timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_chroma_server_going_away_mid_ingest_and_mid_question(tmp_path: Path, corpus: Path, clean: object) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data, log, index = tmp_path / "server", tmp_path / "chroma.log", tmp_path / "index"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_CHROMA_URL": url, "RAG_INGEST_BATCH_CHARS": "2000"}
    server = _start_chroma(port, data, log)
    try:
        ingest = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(corpus), "--index", str(index)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while _committed(index) < 10 and ingest.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ingest.poll() is None, "the ingest finished before the server could be stopped"
        server.send_signal(signal.SIGKILL)  # the server goes away mid-ingest
        server.wait()
        _, stderr = ingest.communicate(timeout=180)
        assert ingest.returncode == 1 and "Chroma server" in stderr and "Traceback" not in stderr, stderr

        server = _start_chroma(port, data, log)
        question = "Which alliance did the crisis create a rift within?"
        timeout_s = 3.0
        with Assistant(index_dir=index, chroma_url=url, chroma_timeout_s=timeout_s) as assistant:
            assert consistency_faults(index_state(assistant)) == []
            server.send_signal(signal.SIGSTOP)  # a server that hangs: the question times out, not waits forever
            started = time.monotonic()
            with pytest.raises(BackendError, match="Chroma"):
                assistant.ask(question)
            # The setting bounds the wait (a request, and chromadb's retry of it): not the 30 s default, not forever.
            assert time.monotonic() - started < 5 * timeout_s
            server.send_signal(signal.SIGCONT)
            assert "NATO" in assistant.ask(question).text
            server.send_signal(signal.SIGKILL)  # ... and one that goes away mid-question
            server.wait()
            with pytest.raises(BackendError, match="Chroma"):
                assistant.ask(question)
            server = _start_chroma(port, data, log)
            assert "NATO" in assistant.ask(question).text  # the same Assistant recovers
            assistant.ingest([corpus])  # the ingest completes
            assert same_as_clean(index_state(assistant), clean) == []  # type: ignore[arg-type]
    finally:
        server.kill()
        server.wait()


@pytest.mark.slow
def test_two_ingests_at_once(tmp_path: Path, corpus: Path, clean: object) -> None:
    """Two real processes on one index: one writes, the other is refused with a message (or, if they did not
    overlap, both succeed); never corrupt."""
    index = tmp_path / "index"
    cmd = [sys.executable, "-m", "rag.cli", "ingest", str(corpus), "--index", str(index)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.returncode, out[1]) for p in procs for out in [p.communicate(timeout=600)]]
    # Usually one holds the lock while the other arrives; if the first finished before the second started,
    # both succeed, which is correct too. Anything else is a failure, and a refusal must be the lock's message.
    assert 0 in [code for code, _ in results] and all(code in (0, 1) for code, _ in results), results
    for code, err in results:
        if code == 1:
            assert "another ingest (pid" in err and "Traceback" not in err, err
    with Assistant(index_dir=index) as assistant:
        assert same_as_clean(index_state(assistant), clean) == []  # type: ignore[arg-type]


def test_index_from_an_older_version_is_refused_with_what_to_do(tmp_path: Path, corpus_dir: Path) -> None:
    index = tmp_path / "index"
    with Assistant(index_dir=index) as built:
        built.ingest([corpus_dir])
    with sqlite3.connect(index / "catalog.sqlite3") as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    with pytest.raises(IndexMismatchError, match=r"schema='0'.*re-ingest into a new index directory"):
        Assistant(index_dir=index)
    done = run_cli("ask", QUESTION, "--index", str(index))
    assert done.returncode == 1 and "re-ingest" in done.stderr and "Traceback" not in done.stderr


def test_damaged_catalog_is_a_clear_error(tmp_path: Path, corpus_dir: Path) -> None:
    index = tmp_path / "index"
    with Assistant(index_dir=index) as built:
        built.ingest([corpus_dir])
    (index / "catalog.sqlite3").write_bytes(b"this is not a database" * 100)
    for name in ("catalog.sqlite3-wal", "catalog.sqlite3-shm"):
        (index / name).unlink(missing_ok=True)
    with pytest.raises(IndexStorageError, match="damaged: re-ingest"):
        Assistant(index_dir=index)
