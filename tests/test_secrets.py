"""API keys come from the environment only, and are never logged, shown in the page, or returned by the API."""

from __future__ import annotations

import json
import secrets
import sys
import urllib.request
from pathlib import Path

from rag import Assistant
from tests.conftest import REPO
from tests.index_checks import run_cli
from tests.services import app_env, free_port, running


def test_the_llm_api_key_never_leaves_the_process(tmp_path: Path, corpus_dir: Path) -> None:
    from gradio_client import Client

    key = f"sk-test-{secrets.token_hex(16)}"
    index = tmp_path / "idx"
    with Assistant(index_dir=index) as built:
        built.ingest([corpus_dir])
    dead = free_port()  # an OpenAI-compatible backend that is down: its error paths are where keys leak
    llm = {"RAG_ANSWER_BACKEND": "openai", "RAG_LLM_BASE_URL": f"http://127.0.0.1:{dead}/v1",
           "RAG_LLM_MODEL": "some-model", "RAG_LLM_API_KEY": key, "RAG_LLM_TIMEOUT_S": "2"}
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    seen: list[str] = []
    with running([sys.executable, "app.py", "--index", str(index), "--port", str(port)], url,
                 tmp_path / "app.log", timeout_s=120, env=app_env(**llm), cwd=REPO):
        for path in ("", "config", "gradio_api/info", "gradio_api/openapi.json"):
            try:
                with urllib.request.urlopen(url + path, timeout=30) as response:
                    seen.append(response.read().decode(errors="replace"))
            except urllib.error.HTTPError as exc:  # a route this Gradio does not have is fine; its body is read
                seen.append(exc.read().decode(errors="replace"))
        client = Client(url, verbose=False)
        data = client.predict("Who requested CSTO troops?", 5, [], "", "", "", api_name="/answer")
        assert data["fallback"] and "Tokayev" in data["answer"]  # the extractive answer stood in, with the reason
        seen.append(json.dumps(data))
        _, history, panel = client.predict("Who requested CSTO troops?", [], 5, [], "", "", "openai", api_name="/ask")
        seen += [json.dumps(history), panel]
    seen.append((tmp_path / "app.log").read_text())
    cli = run_cli("ask", "Who requested CSTO troops?", "--index", str(index), "--json", env=llm)
    seen += [cli.stdout, cli.stderr]
    assert cli.returncode == 0 and json.loads(cli.stdout)["fallback"]
    for text in seen:
        assert key not in text and key[8:] not in text
