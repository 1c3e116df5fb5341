"""The chat page: a real Gradio server on a loopback port, driven through gradio_client."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rag import Assistant
from tests.conftest import REPO
from tests.services import free_port, running


def test_chat_answers_with_numbered_sources(tmp_path: Path, corpus_dir: Path) -> None:
    from gradio_client import Client

    index = tmp_path / "idx"
    Assistant(index_dir=index).ingest([corpus_dir])
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with running([sys.executable, "app.py", "--index", str(index), "--port", str(port)],
                 f"http://127.0.0.1:{port}/", tmp_path / "app.log", timeout_s=120, env=env, cwd=REPO):
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        box, history = client.predict("Who requested CSTO troops?", [], api_name="/ask")
        assert box == ""
        from app import _message_text

        reply_text = _message_text(history[-1]["content"])
        assert "Tokayev" in reply_text and "**Sources**" in reply_text and "1. **" in reply_text
        _, history = client.predict("What is the capital of France?", history, api_name="/ask")
        assert "don't say" in _message_text(history[-1]["content"])

        # Filters: the seed article is UNIAN's, dated 2022.
        _, history = client.predict("Who requested CSTO troops?", [], ["UNIAN"], "2022", "", api_name="/ask")
        assert "Tokayev" in _message_text(history[-1]["content"])
        _, history = client.predict("Who requested CSTO troops?", [], [], "2023-01", "", api_name="/ask")
        assert "don't say" in _message_text(history[-1]["content"])
        box, history = client.predict("Who requested CSTO troops?", [], [], "last week", "", api_name="/ask")
        assert box == "Who requested CSTO troops?" and "Filter: dates are YYYY" in _message_text(history[-1]["content"])


def test_render_escapes_article_html() -> None:
    from app import render_answer
    from rag.types import Answer, Citation

    answer = Answer(question="q", text="<script>alert(1)</script> [1]", abstained=False,
                    citations=(Citation(1, "d", "<img src=x onerror=alert(1)>", 0, 5, title="<b>t</b>",
                                        url="javascript:alert(1)"),))
    out = render_answer(answer)
    assert "<script>" not in out and "<img" not in out and "<b>" not in out and "javascript:" not in out
