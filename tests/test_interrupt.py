"""Crash safety: an ingest killed (SIGKILL) at random points, 20 times over, re-run each time, ends in the same index
as a clean ingest of the same files: same documents, same chunk ids and count, no duplicates, no orphan vectors,
the keyword (BM25) index and the catalog consistent with Chroma.

Between runs the corpus changes (files edited; every third run one deleted and one added, `--sync`), so the kills land in adds,
replacements and removals, not only in a first ingest. After every kill the partial index must be consistent too.
"""

from __future__ import annotations

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
from tests.conftest import REPO
from tests.index_checks import consistency_faults, index_state, same_as_clean, write_corpus

KILLS = 20


class _Commits:
    """Counts the transactions other processes commit to the catalog (SQLite's data_version)."""

    def __init__(self, index: Path) -> None:
        index.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(index / "catalog.sqlite3", timeout=5)

    def count(self) -> int:
        try:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return 0

    def close(self) -> None:
        self._db.close()


def _ingest(folder: Path, index: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAG_INGEST_BATCH_CHARS": "1500", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ingest", str(folder), "--index", str(index), "--sync", "--json"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _change_corpus(folder: Path, rng: random.Random, run: int) -> None:
    """Edit a few files, and every third run delete one and add one: each run adds, replaces or removes."""
    files = sorted(folder.iterdir())
    for path in rng.sample(files, 3):
        path.write_text(path.read_text() + f"\nRun {run} added this sentence to {path.stem}.\n")
    if run % 3 == 0:
        rng.choice(files).unlink()
        write_corpus(folder, 1, start=100 + run)


@pytest.mark.slow
def test_sigkill_at_random_points_never_corrupts_the_index(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_corpus(folder, 40)
    index = tmp_path / "killed"
    rng = random.Random(20261126)

    # How long a full ingest of this corpus takes here, to spread the kill times over it.
    started = time.monotonic()
    assert _ingest(folder, tmp_path / "timing").wait(timeout=600) == 0
    full_s = time.monotonic() - started

    kills, runs, faults = 0, 0, []
    commits = _Commits(index)
    while kills < KILLS and runs < 3 * KILLS:  # a run that finishes before its kill still counts as a re-run
        if runs:
            _change_corpus(folder, rng, runs)
        proc = _ingest(folder, index)
        runs += 1
        if runs % 2 == 0:  # a random moment of the run: start-up, reading, embedding, writing, committing
            deadline = time.monotonic() + rng.uniform(0.2, full_s)
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        else:  # right after a random number of catalog transactions: between the steps of the write protocol
            target = commits.count() + rng.randint(1, 6)
            deadline = time.monotonic() + 120
            while proc.poll() is None and commits.count() < target and time.monotonic() < deadline:
                time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        with Assistant(index_dir=index) as partial:
            faults += [f"after run {runs}: {f}" for f in consistency_faults(index_state(partial))]
    commits.close()
    assert kills >= KILLS, f"only {kills} of {runs} runs were still going when killed"

    assert _ingest(folder, index).wait(timeout=600) == 0  # the re-run after the last kill completes it
    with Assistant(index_dir=tmp_path / "clean") as clean:
        clean.ingest([folder])
        expected = index_state(clean)
    with Assistant(index_dir=index) as final:
        faults += same_as_clean(index_state(final), expected)
    print(f"\ncrash test: {runs} runs, {kills} killed with SIGKILL, {len(faults)} faults found")
    assert faults == [], faults
