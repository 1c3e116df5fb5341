"""The Gradio chat page over one shared Assistant: layout, events and formatting only."""

from __future__ import annotations

import argparse
import html as _html
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

EXAMPLES = [
    "Who requested CSTO troops?",
    "How many protesters were killed?",
    "Who was given the interim duties of prime minister?",
    "Which countries sent troops to Kazakhstan?",
]

_assistant: Any = None
_assistant_lock = threading.Lock()


def get_assistant(index_dir: str | None = None) -> Any:
    """The process-wide Assistant (created on first use)."""
    global _assistant
    with _assistant_lock:
        if _assistant is None:
            from rag.assistant import Assistant

            _assistant = Assistant(index_dir=index_dir)
        return _assistant


def _escape(text: str) -> str:
    """Article text shown as text: no tag in it can render or run."""
    return _html.escape(text, quote=False)


def _message_text(content: Any) -> str:
    """Chatbot message content (a string, or Gradio 6's list of {"type": "text", "text": ...}) as text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def render_answer(answer: Any) -> str:
    """Answer -> Markdown: the text, then its numbered sources with their quotes. Article text is escaped."""
    if answer.abstained:
        return f"🛈 *{_escape(answer.text)}*"
    lines = [f"**{_escape(answer.short_answer)}**", ""] if answer.short_answer else []
    lines += [_escape(answer.text), "", "**Sources**"]
    for c in answer.citations:
        meta = " · ".join(_escape(x) for x in (c.source, c.published) if x)
        title = _escape(c.title or c.doc_id)
        link = f" — <{_escape(c.url)}>" if c.url.startswith(("http://", "https://")) else ""
        lines.append(f"{c.id}. **{title}**{(' (' + meta + ')') if meta else ''}{link}  \n   “{_escape(c.quote)}”")
        if c.also_in:
            lines.append("   also in: " + "; ".join(_escape(", ".join(x for x in (r.source or r.title or r.doc_id,
                                                                                  r.published) if x))
                                                  for r in c.also_in))
    return "\n".join(lines)


def _history_pairs(history: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    question = None
    for message in history:
        text = _message_text(message.get("content"))
        if message.get("role") == "user":
            question = text
        elif message.get("role") == "assistant" and question is not None:
            pairs.append((question, text))
            question = None
    return pairs


def respond(message: str, history: list[dict[str, Any]], sources: Sequence[str] | None = None,
            since: str = "", until: str = "") -> tuple[str, list[dict[str, Any]]]:
    """One chat turn; sources and the published date range (YYYY[-MM[-DD]], inclusive) restrict the articles."""
    from rag.errors import RagError
    from rag.types import Filters

    history = list(history or [])
    if not message or not message.strip():
        return "", history
    try:
        filters = Filters(sources=tuple(sources or ()), published_from=(since or "").strip(),
                          published_to=(until or "").strip())
    except ValueError as exc:
        history.extend([{"role": "user", "content": message},
                        {"role": "assistant", "content": f"⚠️ Filter: {_escape(str(exc))}"}])
        return message, history
    try:
        answer = get_assistant().ask(message, history=_history_pairs(history), filters=filters)
        reply = render_answer(answer)
    except RagError as exc:
        reply = f"⚠️ {_escape(str(exc))}"
    history.extend([{"role": "user", "content": message}, {"role": "assistant", "content": reply}])
    return "", history


def corpus_sources() -> list[str]:
    """The distinct sources of the indexed articles, for the filter."""
    return list(get_assistant().sources())


def build_ui() -> Any:
    import gradio as gr

    with gr.Blocks(title="News QA") as demo:
        gr.Markdown("## Ask the news corpus\nAnswers quote the articles and cite each quote; when the articles don't say, the assistant says so.")
        chatbot = gr.Chatbot(label="Chat", height=520, placeholder="Ask about the articles, e.g. *Who requested CSTO troops?*")
        with gr.Row():
            box = gr.Textbox(placeholder="Ask a question about the articles…", show_label=False, scale=8, autofocus=True)
            send = gr.Button("Ask", variant="primary", scale=1)
            clear = gr.Button("New chat", scale=1)
        with gr.Accordion("Filters", open=False):
            with gr.Row():
                sources = gr.Dropdown(choices=corpus_sources(), value=[], multiselect=True, label="Sources",
                                      info="only articles from these sources (none selected: all)", scale=3)
                since = gr.Textbox(value="", label="Published from", placeholder="YYYY or YYYY-MM or YYYY-MM-DD", scale=1)
                until = gr.Textbox(value="", label="Published until", placeholder="YYYY or YYYY-MM or YYYY-MM-DD", scale=1)
        gr.Examples(EXAMPLES, inputs=box)
        inputs = [box, chatbot, sources, since, until]
        box.submit(respond, inputs, [box, chatbot], api_name="ask")
        send.click(respond, inputs, [box, chatbot], api_visibility="private")
        clear.click(lambda: ("", []), None, [box, chatbot], api_visibility="private")
    demo.queue(default_concurrency_limit=4)
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = argparse.ArgumentParser(prog="app.py", description="Serve the news QA chat page.")
    parser.add_argument("--index", help="index directory (default: $RAG_INDEX_DIR or ./.rag)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT", "7860")))
    parser.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"))
    parser.add_argument("--share", action="store_true")
    args = parser.parse_args(argv)
    from rag.errors import RagError

    try:
        get_assistant(args.index)
    except RagError as exc:
        print(f"app: error: {exc}", file=sys.stderr)
        return 1
    demo = build_ui()
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, footer_links=["api"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
