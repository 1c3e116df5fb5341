"""Shared fixtures: real Chroma in tmp dirs, the real bundled model, the seed article."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web_site import Site

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "corpus" / "kazakhstan-protests-unian-2022.txt"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    return folder


@pytest.fixture(scope="session")
def seed_assistant(tmp_path_factory: pytest.TempPathFactory):
    """One Assistant over the seed corpus, shared by the read-only answer tests."""
    from rag import Assistant

    root = tmp_path_factory.mktemp("seed")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    assistant = Assistant(index_dir=root / "index")
    report = assistant.ingest([corpus])
    assert report.added == 1 and not report.skipped
    yield assistant
    assistant.close()


@pytest.fixture
def site() -> Iterator[Site]:
    """The test's own web site on loopback, its robots.txt disallowing /private/."""
    s = Site()
    s.add("/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain")
    yield s
    s.close()
