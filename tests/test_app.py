"""The chat page's API surface: a real Gradio server on a loopback port, driven through gradio_client."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rag import Assistant
from tests.conftest import REPO
from tests.services import app_env, free_port, running


def test_chat_and_answer_endpoints(tmp_path: Path, corpus_dir: Path) -> None:
    from gradio_client import Client

    from app import _message_text

    index = tmp_path / "idx"
    with Assistant(index_dir=index) as assistant:
        assistant.ingest([corpus_dir])
    port = free_port()
    with running([sys.executable, "app.py", "--index", str(index), "--port", str(port)],
                 f"http://127.0.0.1:{port}/", tmp_path / "app.log", timeout_s=120, env=app_env(), cwd=REPO):
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        # /ask is the chat turn: (question, history, top_k, sources, since, until) -> (box, history, side panel)
        box, history, panel = client.predict("Who requested CSTO troops?", [], 5, [], "", "", api_name="/ask")
        assert box == ""
        reply = _message_text(history[-1]["content"])
        assert "Tokayev" in reply and 'href="#src-1-1"' in reply and "Sources:" in reply
        assert 'id="src-1-1"' in panel and "<mark>" in panel
        _, history, _ = client.predict("Who did he give the interim duties of prime minister to?", history, 5, [],
                                       "", "", api_name="/ask")
        assert "Smailov" in _message_text(history[-1]["content"])
        _, history, _ = client.predict("What is the capital of France?", history, 5, [], "", "", api_name="/ask")
        assert "Not in the articles" in _message_text(history[-1]["content"])

        # Filters: the seed article is UNIAN's, dated 2022.
        _, history, _ = client.predict("Who requested CSTO troops?", [], 5, ["UNIAN"], "2022", "", api_name="/ask")
        assert "Tokayev" in _message_text(history[-1]["content"])
        _, history, _ = client.predict("Who requested CSTO troops?", [], 5, [], "2023-01", "", api_name="/ask")
        assert "Not in the articles" in _message_text(history[-1]["content"])
        box, history, _ = client.predict("Who requested CSTO troops?", [], 5, [], "last week", "", api_name="/ask")
        assert box == "Who requested CSTO troops?"
        assert "dates are YYYY" in _message_text(history[-1]["content"])

        # Concurrent users of the one Assistant each get their own right answer.
        questions = {"Who requested CSTO troops?": "Tokayev", "How many protesters were killed?": "26",
                     "Who was given the interim duties of prime minister?": "Smailov"}
        jobs = [(expected, client.submit(q, [], 5, [], "", "", api_name="/ask"))
                for q, expected in list(questions.items()) * 3]
        for expected, job in jobs:
            assert expected in _message_text(job.result(timeout=120)[1][-1]["content"])

        # /answer is the answer as data, with exact spans.
        data = client.predict("Who requested CSTO troops?", 3, [], "", "", api_name="/answer")
        assert data["abstained"] is False and "Tokayev" in data["short_answer"]
        with Assistant(index_dir=index) as reader:
            article = reader.article(data["citations"][0]["doc_id"])
        c = data["citations"][0]
        assert article is not None and article.text[c["start_char"]:c["end_char"]] == c["quote"]
        assert (c["published"], c["published_source"]) == ("2022", "text")  # "(C)UNIAN 2022" at its end

        # Asked as of a date: a year named in the question is the period searched, and the answer says so;
        # asked before the article was published, it is not seen.
        data = client.predict("Who requested CSTO troops in 2022?", 3, [], "", "", "", "2023-01-01", api_name="/answer")
        assert "Tokayev" in data["answer"] and data["period"] == "in 2022: articles of 2022-01-01 to 2022-12-31"
        _, history, _ = client.predict("Who requested CSTO troops?", [], 5, [], "", "", "extractive", "2021-12-31",
                                       api_name="/ask")
        assert "Not in the articles" in _message_text(history[-1]["content"])


def test_unreachable_chroma_server_is_a_message_in_the_page(tmp_path: Path) -> None:
    from gradio_client import Client

    from app import _message_text

    port, dead = free_port(), free_port()
    env = app_env(RAG_CHROMA_URL=f"http://127.0.0.1:{dead}")
    with running([sys.executable, "app.py", "--index", str(tmp_path / "idx"), "--port", str(port)],
                 f"http://127.0.0.1:{port}/", tmp_path / "app.log", timeout_s=120, env=env, cwd=REPO):
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        _, history, _ = client.predict("Who requested CSTO troops?", [], 5, [], "", "", api_name="/ask")
        reply = _message_text(history[-1]["content"])
        assert "can't answer right now" in reply and f"127.0.0.1:{dead}" in reply and "unreachable" in reply
        assert "Traceback" not in reply


def test_exposed_server_needs_a_login(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "app.py", "--index", str(tmp_path / "idx"), "--host", "0.0.0.0"],
                            capture_output=True, text=True, env=app_env(), cwd=REPO, timeout=120)
    assert result.returncode == 2
    assert "RAG_USERNAME and RAG_PASSWORD" in result.stderr
    assert not (tmp_path / "idx").exists(), "refused before opening anything"


def test_login_when_credentials_are_set(tmp_path: Path, corpus_dir: Path) -> None:
    from gradio_client import Client

    with Assistant(index_dir=tmp_path / "idx") as assistant:
        assistant.ingest([corpus_dir])
    port = free_port()
    env = app_env(RAG_USERNAME="editor", RAG_PASSWORD="s3cret-pass")
    url = f"http://127.0.0.1:{port}/"
    with running([sys.executable, "app.py", "--index", str(tmp_path / "idx"), "--port", str(port)],
                 url, tmp_path / "app.log", timeout_s=120, env=env, cwd=REPO):
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url + "gradio_api/info", timeout=10)
        assert denied.value.code in (401, 403)
        from gradio_client.exceptions import AuthenticationError

        with pytest.raises((AuthenticationError, ValueError)):
            Client(url, verbose=False, auth=("editor", "wrong"))
        client = Client(url, verbose=False, auth=("editor", "s3cret-pass"))
        data = client.predict("Who requested CSTO troops?", 5, [], "", "", api_name="/answer")
        assert "Tokayev" in data["answer"]
    assert "s3cret-pass" not in (tmp_path / "app.log").read_text()


def test_render_escapes_article_html() -> None:
    from app import render_answer, render_card
    from rag.types import Answer, Citation

    citation = Citation(1, "d", "<img src=x onerror=alert(1)>", 0, 28, title="<b>t</b>", url="javascript:alert(1)")
    answer = Answer(question="q", text="<script>alert(1)</script> *bold* [1]", abstained=False, citations=(citation,))
    out = render_answer(answer, turn=1)
    assert "<script>" not in out and "<img" not in out and "<b>" not in out and "javascript:" not in out
    assert "\\*bold\\*" in out and 'href="#src-1-1"' in out
    card = render_card(citation, 1, "<img src=x onerror=alert(1)> and more text")
    assert "<img" not in card and "<b>" not in card and "javascript:" not in card
    assert "<mark>&lt;img src=x onerror=alert(1)&gt;</mark> and more text" in card


def test_the_answer_names_its_period_and_the_card_where_its_date_came_from() -> None:
    from app import describe_filters, render_answer, render_card
    from rag.types import Answer, Citation

    citation = Citation(1, "d", "Rates rose.", 0, 11, source="Wire", published="2022-06-16", published_source="url")
    answer = Answer(question="q", text="Rates rose. [1]", abstained=False, citations=(citation,),
                    period="this week: articles of 2022-06-09 to 2022-06-16")
    assert "Period: this week: articles of 2022-06-09 to 2022-06-16" in render_answer(answer, turn=1)
    assert "Wire · 2022-06-16 (date from the URL)" in render_card(citation, 1, "Rates rose.")
    plain = Citation(1, "d", "Rates rose.", 0, 11, source="Wire", published="2022-06-16", published_source="metadata")
    assert "Wire · 2022-06-16</div>" in render_card(plain, 1, "Rates rose.")
    assert "asked as of 2022-06-16" in describe_filters([], "", "", "2022-06-16")


def test_backend_setting_and_fallback_note(tmp_path: Path, corpus_dir: Path) -> None:
    """An LLM backend configured but down: the page still answers, extractively, and says why. (The real
    llama.cpp server is exercised in tests/test_llm_server.py.)"""
    from gradio_client import Client

    from app import _message_text

    with Assistant(index_dir=tmp_path / "idx") as assistant:
        assistant.ingest([corpus_dir])
    port, dead = free_port(), free_port()
    env = app_env(RAG_ANSWER_BACKEND="openai", RAG_LLM_BASE_URL=f"http://127.0.0.1:{dead}/v1", RAG_LLM_TIMEOUT_S="5")
    with running([sys.executable, "app.py", "--index", str(tmp_path / "idx"), "--port", str(port)],
                 f"http://127.0.0.1:{port}/", tmp_path / "app.log", timeout_s=120, env=env, cwd=REPO):
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        _, history, _ = client.predict("Who requested CSTO troops?", [], 5, [], "", "", "openai", api_name="/ask")
        reply = _message_text(history[-1]["content"])
        assert "Tokayev" in reply and "this is the extractive answer" in reply and f"127.0.0.1:{dead}" in reply
        _, history, _ = client.predict("Who requested CSTO troops?", [], 5, [], "", "", "extractive",
                                       api_name="/ask")
        assert "this is the extractive answer" not in _message_text(history[-1]["content"])
        data = client.predict("Who requested CSTO troops?", 5, [], "", "", "openai", api_name="/answer")
        assert data["backend"] == "extractive" and "failed" in data["fallback"] and data["citations"]


def test_the_page_keeps_answers_not_their_html() -> None:
    from app import Turn, conversation
    from rag.types import Answer

    first = Turn("Who requested CSTO troops?", Answer(question="q", text="Tokayev asked [1].", abstained=False), "")
    history = [{"role": "user", "content": "Who requested CSTO troops?"},
               {"role": "assistant", "content": "**Tokayev**\n\n<a href='#src-1-1'>[1]</a> rendered"},
               {"role": "user", "content": "Who did he appoint?"},
               {"role": "assistant", "content": "<b>a reply from elsewhere</b>"}]
    pairs, kept = conversation(history, [first])
    # The answer text comes from the kept Answer, never from the page's HTML; a turn the page did not answer in
    # this session counts with its question only.
    assert pairs == [("Who requested CSTO troops?", "Tokayev asked [1]."), ("Who did he appoint?", "")]
    assert kept == [first]
    assert conversation([], [first]) == ([], [])  # a new (or client-sent empty) chat drops the old turns
    other = [{"role": "user", "content": "Another question?"}, {"role": "assistant", "content": "x"}]
    assert conversation(other, [first]) == ([("Another question?", "")], [])


def test_serve_settings_are_read_once_and_hold_the_login_policy() -> None:
    from rag.config import ServeSettings
    from rag.errors import ConfigError

    serve = ServeSettings.from_env({"RAG_HOST": "0.0.0.0", "RAG_PORT": "8080"}, port=None, index_dir="idx")
    assert (serve.host, serve.port, serve.index_dir, serve.exposed) == ("0.0.0.0", 8080, "idx", True)
    assert "needs a login" in serve.login_problem()
    assert ServeSettings.from_env({"RAG_HOST": "0.0.0.0"}, no_auth=True).login_problem() == ""
    logged = ServeSettings.from_env({"RAG_HOST": "0.0.0.0", "RAG_USERNAME": "u", "RAG_PASSWORD": "p"})
    assert logged.login == ("u", "p") and logged.login_problem() == "" and "p'" not in repr(logged)
    assert ServeSettings.from_env({}, port=7000).login_problem() == "" and not ServeSettings.from_env({}).exposed
    with pytest.raises(ConfigError):
        ServeSettings.from_env({"RAG_PORT": "http"})


OWN_ARTICLE = ("Tram line opens in Aarhus\n\nPublished: 2025-02-18\n\nThe city's second tram line opened on Monday "
               "after four years of works. The line cost 3.1 billion kroner and links the harbour to the university. "
               "The mayor said the first month of rides would be free.\n")


def test_examples_are_questions_the_loaded_index_answers(tmp_path: Path, corpus_dir: Path) -> None:
    """The bundled article's example questions are offered where it is loaded, and none on a user's own corpus
    (an offered question the page then refuses); a `Published:` dateline dates a .txt."""
    from app import EXAMPLES, Page

    own = tmp_path / "own"
    own.mkdir()
    (own / "tram.txt").write_text(OWN_ARTICLE, encoding="utf-8")
    for folder, expected in ((own, []), (corpus_dir, EXAMPLES)):
        index = tmp_path / f"idx-{folder.name}"
        with Assistant(index_dir=index) as assistant:
            assistant.ingest([folder])
        page = Page(str(index))
        try:
            assert page.examples() == expected
        finally:
            page.assistant().close()
    with Assistant(index_dir=tmp_path / "idx-own") as assistant:
        (doc,) = assistant.documents()
        assert (doc.title, doc.published) == ("Tram line opens in Aarhus", "2025-02-18")
        assert assistant.catalog.articles([doc.doc_id])[doc.doc_id].published_source == "text"


def test_a_long_upload_moves_the_pages_progress_bar(tmp_path: Path) -> None:
    """One big JSONL uploaded on the page: its progress is told as it is read, not only when it is done."""
    import json

    from app import Page

    upload = tmp_path / "archive.jsonl"
    with upload.open("w", encoding="utf-8") as f:
        for i in range(120):
            text = f"Council {i} votes on the harbour plan. " + " ".join(f"Sentence {j} of story {i}." for j in range(40))
            f.write(json.dumps({"id": f"story-{i}", "title": f"Story {i}", "text": text}) + "\n")
    seen: list[tuple[float, str]] = []
    page = Page(str(tmp_path / "idx"))
    try:
        message, *_ = page.ingest_uploads([str(upload)], lambda share, desc="": seen.append((share, desc)))
    finally:
        page.assistant().close()
    assert "120 added" in message, message
    within = [share for share, _ in seen if 0 < share < 1]
    assert len(within) >= 20 and within == sorted(within), seen[:5]
    assert seen[-1] == (1.0, "Reading and embedding: file 1 of 1")
