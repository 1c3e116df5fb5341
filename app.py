"""The Gradio web page over one shared Assistant: layout, events and formatting only.

Chat tab: streamed answers whose [n] markers open the cited passage in the side panel (client-side, see _HEAD),
example questions on an empty chat, settings (top-k, source and date filters) applied per question. Corpus tab:
upload and ingest files, feeds and pages fetched once or watched on a schedule, the document list, delete, re-sync. Everything from an article (text, titles, URLs) is
escaped before it reaches the page.
"""

from __future__ import annotations

import argparse
import errno
import html
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.config import ServeSettings
from rag.errors import RagError
from rag.types import Answer, Filters
from rag.uploads import accepted_types, store_uploads, uploads_dir

# Questions about the bundled article, offered on the empty chat where the loaded index answers them (Page.examples).
EXAMPLES = [
    "Who requested CSTO troops?",
    "How many protesters were killed?",
    "Who was given the interim duties of prime minister?",
    "Which countries sent troops to Kazakhstan?",
]
MAX_TURNS_WITH_SOURCES = 30  # older answers keep their text; their source cards leave the side panel
STREAM_WORDS = 3  # an extractive answer is revealed a few words at a time ...
STREAM_DELAY_S = 0.012  # ... at about 250 words/s: under half a second for a two-sentence answer
PANEL_HINT = "Click a citation such as [1] in an answer to read its source here."

# The [n] markers are links to #src-<turn>-<n>; one listener shows the matching card in the side panel. The
# listener runs in the capture phase so the chatbot's own link handling (new tab) never sees the click.
_HEAD = """
<script>
document.addEventListener("click", function (event) {
  const link = event.target && event.target.closest ? event.target.closest('a[href^="#src-"]') : null;
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const panel = document.getElementById("source-panel");
  if (!panel) return;
  const id = link.getAttribute("href").slice(1);
  let found = null;
  panel.querySelectorAll(".source-card").forEach(function (card) {
    const open = card.id === id;
    card.hidden = !open;
    if (open) found = card;
  });
  const hint = panel.querySelector(".source-hint");
  if (hint) hint.hidden = found !== null;
  if (found) found.scrollIntoView({block: "nearest"});
}, true);
</script>
"""
_CSS = """
#source-panel .source-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 12px; }
#source-panel .source-card mark { background: #fde68a; color: #111; padding: 0 2px; }
#source-panel .source-meta { color: var(--body-text-color-subdued); font-size: 0.9em; margin: 4px 0 8px; }
#source-panel .source-context { white-space: pre-wrap; line-height: 1.5; }
#source-panel .source-url { word-break: break-all; }
#chat [data-testid="status-tracker"] { display: none !important; }  /* the reply streams in the chat: no "processing" timer */
"""

def _problem(exc: Exception) -> str:
    """A RagError as a message a user can act on, in the page."""
    return f"⚠️ **The assistant can't answer right now.** {_escape(str(exc))}"


# -- formatting ----------------------------------------------------------------------------------------------
def _escape(text: str) -> str:
    """Article text shown as text: no tag in it can render or run, no Markdown in it can format. Markdown's
    characters are escaped first: escaped after, the "#" of the entity html.escape writes for an apostrophe
    ("&#x27;") was escaped too, and every "Japan's" showed as "Japan&#x27;s".

    >>> _escape("Japan's <b>#1</b> [1]")
    'Japan&#x27;s &lt;b&gt;\\\\#1&lt;/b&gt; \\\\[1\\\\]'
    """
    return html.escape(re.sub(r"([\\`*_{}\[\]#|~])", r"\\\1", text), quote=True)


def _message_text(content: Any) -> str:
    """Chatbot message content (a string, or Gradio 6's list of {"type": "text", "text": ...}) as text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _cite_link(turn: int, number: int) -> str:
    return f'<a href="#src-{turn}-{number}" title="show source {number}">[{number}]</a>'


def _safe_url(url: str) -> str:
    """Only http(s) URLs become links; anything else (javascript:, data:) is dropped."""
    return url if re.match(r"https?://", url or "", re.IGNORECASE) else ""


def render_answer(answer: Any, turn: int) -> str:
    """Answer -> the chat message (Markdown with [n] links to the side panel). Refusals read as refusals."""
    note = (f"\n\n<sub>⚠️ {_escape(answer.fallback)}: this is the extractive answer.</sub>"
            if answer.fallback else "")
    if answer.abstained:
        notice = f"\n>\n> {_escape(answer.notice)}" if answer.notice else ""
        return f"> **Not in the articles.** {_escape(answer.text)}{notice}{note}"
    lines = [f"**{_escape(answer.short_answer)}**", ""] if answer.short_answer else []
    lines.append(render_body(answer.text, turn))
    if answer.citations:
        by_article: dict[str, list[Any]] = {}
        for c in answer.citations:
            by_article.setdefault(c.doc_id, []).append(c)
        sources = []
        for cited in by_article.values():
            c = cited[0]
            meta = ", ".join(_escape(x) for x in (c.source, c.published) if x)
            links = " ".join(_cite_link(turn, x.id) for x in cited)
            sources.append(f"{links} {_escape(c.title or c.doc_id)}{f' ({meta})' if meta else ''}")
        lines += ["", "Sources: " + " · ".join(sources)]
    if answer.period:
        lines += ["", f"<sub>Period: {_escape(answer.period)}</sub>"]
    if answer.backend != "extractive":
        lines += ["", f"<sub>Written by {_escape(answer.backend)}; every sentence was checked against the source "
                      "it cites.</sub>"]
    return "\n".join(lines) + note


def render_body(text: str, turn: int) -> str:
    """Answer text with each [n] a link to its source card."""
    return re.sub(r"\\\[(\d+)\\\]", lambda m: _cite_link(turn, int(m.group(1))), _escape(text))


# How a citation card says where an article's date came from (ingest.dates) when not from the record itself.
DATE_SOURCES = {"url": "date from the URL", "page": "date from the page", "text": "date from the text"}


def render_card(citation: Any, turn: int, article_text: str | None) -> str:
    """One source card for the side panel: title, source, date, URL, and the quote highlighted in its paragraph."""
    from rag.reading.cite import quote_context

    e = lambda s: html.escape(s, quote=True)  # noqa: E731
    if article_text is not None and article_text[citation.start_char:citation.end_char] == citation.quote:
        before, quote, after = quote_context(article_text, citation.start_char, citation.end_char)
    else:  # the article changed or left the index since this answer: the quote alone
        before, quote, after = "", citation.quote, ""
    dated = citation.published and (f"{citation.published} ({DATE_SOURCES[citation.published_source]})"
                                    if citation.published_source in DATE_SOURCES else citation.published)
    meta = " · ".join(e(x) for x in (citation.source, dated) if x)
    url = _safe_url(citation.url)
    link = (f'<div class="source-url"><a href="{e(url)}" target="_blank" rel="noopener noreferrer nofollow">{e(url)}'
            "</a></div>" if url else "")
    also = ""
    if citation.also_in:
        where = "; ".join(e(", ".join(x for x in (r.source or r.title or r.doc_id, r.published) if x))
                          for r in citation.also_in)
        also = f'<div class="source-meta">The same text is also in: {where}</div>'
    return (f'<div class="source-card" id="src-{turn}-{citation.id}" hidden>'
            f'<div><strong>[{citation.id}] {e(citation.title or citation.doc_id)}</strong></div>'
            f'<div class="source-meta">{meta}</div>{link}'
            f'<p class="source-context">{e(before)}<mark>{e(quote)}</mark>{e(after)}</p>{also}</div>')


def render_panel(turns: Sequence[Turn]) -> str:
    """The side panel: the source cards of the chat's latest turns (hidden until a citation is clicked)."""
    return f'<div class="source-hint">{PANEL_HINT}</div>' + "".join(t.cards for t in turns[-MAX_TURNS_WITH_SOURCES:])


def _reveal(text: str) -> Iterator[str]:
    """Growing prefixes of a piece of answer text, a few words at a time (a [n] marker is never cut)."""
    words = re.findall(r"\S+\s*", text)
    for end in range(STREAM_WORDS, len(words), STREAM_WORDS):
        yield "".join(words[:end])
    yield text


@dataclass(frozen=True)
class Turn:
    """One answered question of a chat, as the page keeps it in its state: the Answer itself (never parsed back
    from the page) and its source cards for the side panel."""

    question: str
    answer: Answer
    cards: str


def conversation(history: Sequence[dict[str, Any]], turns: Sequence[Turn]) -> tuple[list[tuple[str, str]], list[Turn]]:
    """The (question, answer text) pairs of the chat so far, and the turns that are still in it. The chat shown
    is the truth (a client may send its own, or an empty one): each of its answered questions takes its answer
    from the kept Turn of the same place and question, else it counts with no answer text."""
    questions: list[str] = []
    asked = None
    for message in history:
        if message.get("role") == "user":
            asked = _message_text(message.get("content"))
        elif message.get("role") == "assistant" and asked is not None:
            questions.append(asked)
            asked = None
    kept: list[Turn] = []
    for turn, question in zip(turns, questions, strict=False):
        if turn.question != question:
            break
        kept.append(turn)
    return [(q, kept[i].answer.text if i < len(kept) else "") for i, q in enumerate(questions)], kept


# -- the page's handlers ------------------------------------------------------------------------------------
class _EmptyIndex(Exception):
    pass


def _no_answer(question: str) -> Turn:
    """The turn of a question that got a message instead of an answer (an error), so later turns stay aligned."""
    return Turn(question, Answer(question=question, text="", abstained=True), "")


class Page:
    """The page's event handlers over one shared Assistant, opened on first use (and retried on the next request
    if opening failed). Holds no per-user state: each chat's turns live in its Gradio session."""

    def __init__(self, index_dir: str | None = None) -> None:
        self.index_dir = index_dir
        self._assistant: Any = None
        self._lock = threading.Lock()
        self._watcher: Any = None  # ingest.watch.Watcher, made when the Corpus tab first watches feeds

    def assistant(self) -> Any:
        with self._lock:
            if self._assistant is None:
                from rag.assistant import Assistant

                self._assistant = Assistant(index_dir=self.index_dir)
            return self._assistant

    def examples(self) -> list[str]:
        """The example questions this index answers: the bundled article's, where it is loaded; none on a corpus
        they are not about (an example that is refused teaches a new user the wrong thing)."""
        try:
            assistant = self.assistant()
            if assistant.stats()["documents"] == 0:
                return []
            return [q for q in EXAMPLES if not assistant.ask(q, backend="extractive").abstained]  # no LLM call
        except RagError:  # the page tells it on first use
            return []

    # -- chat ----------------------------------------------------------------------------------------------
    def respond(self, message: str, history: list[dict[str, Any]], turns: list[Turn] | None, top_k: float = 5,
                sources: Sequence[str] | None = None, since: str = "", until: str = "", backend: str | None = None,
                as_of: str = "") -> Iterator[tuple[str, list[dict[str, Any]], str, list[Turn]]]:
        """One chat turn, streamed: (textbox, chat history, side panel, the chat's turns) after each step."""
        history = list(history or [])
        pairs, turns = conversation(history, turns or [])
        if not message or not message.strip():
            yield "", history, render_panel(turns), turns
            return
        history += [{"role": "user", "content": message}, {"role": "assistant", "content": "*Searching the articles…*"}]
        panel = render_panel(turns)
        yield "", history, panel, turns
        try:
            filters = Filters(sources=tuple(sources or ()), published_from=(since or "").strip(),
                              published_to=(until or "").strip(), as_of=(as_of or "").strip())
        except ValueError as exc:
            history[-1] = {"role": "assistant", "content": f"⚠️ **Check the date filter.** {_escape(str(exc))}"}
            yield message, history, panel, [*turns, _no_answer(message)]
            return
        turn = len(turns) + 1
        answer = None
        shown = ""
        try:
            assistant = self.assistant()
            if assistant.stats()["documents"] == 0:
                raise _EmptyIndex()
            for event in assistant.ask_stream(message, history=pairs, top_k=int(top_k), filters=filters,
                                              backend=backend or None):
                if isinstance(event, Answer):
                    answer = event
                    break
                for partial in _reveal(event.text):  # verified text: an LLM's sentences arrive checked, one at a time
                    history[-1] = {"role": "assistant", "content": render_body(shown + partial, turn) + " ▌"}
                    yield "", history, panel, turns
                    time.sleep(STREAM_DELAY_S)
                shown += event.text
            assert answer is not None
            articles = {c.doc_id: assistant.article(c.doc_id) for c in answer.citations}
        except (_EmptyIndex, RagError) as exc:
            history[-1] = {"role": "assistant", "content": (
                "⚠️ **The index is empty.** Add articles in the Corpus tab (or `rag ingest PATH`), then ask again."
                if isinstance(exc, _EmptyIndex) else _problem(exc))}
            yield "", history, panel, [*turns, _no_answer(message)]
            return
        cards = "".join(render_card(c, turn, getattr(articles.get(c.doc_id), "text", None)) for c in answer.citations)
        turns = [*turns, Turn(message, answer, cards)]
        history[-1] = {"role": "assistant", "content": render_answer(answer, turn)}
        yield "", history, render_panel(turns), turns

    def api_answer(self, question: str, top_k: int = 5, sources: list[str] | None = None, since: str = "",
                   until: str = "", backend: str = "", as_of: str = "") -> dict[str, Any]:
        """The answer as data (rag.serialize.answer_to_dict, without the passages; the same shape as
        `rag ask --json`): text with [n] markers (`answer`), citations with exact spans, abstained, short answer,
        support, which backend wrote it, why the extractive answer stood in (fallback), and the period the
        question pointed to (`period`, when it named one). `as_of`: the date the question is asked (default
        today)."""
        import gradio as gr

        from rag.serialize import answer_to_dict

        named = [sources] if isinstance(sources, str) else list(sources or ())
        try:  # the caller's values: a message, not a traceback
            k = int(top_k)
            filters = Filters(sources=tuple(named), published_from=since.strip(), published_to=until.strip(),
                              as_of=as_of.strip())
        except (ValueError, TypeError, OverflowError) as exc:
            raise gr.Error(str(exc)) from exc
        try:
            answer = self.assistant().ask(question, top_k=k, filters=filters, backend=backend or None)
        except RagError as exc:
            raise gr.Error(str(exc)) from exc
        return answer_to_dict(answer, passages=False)

    # -- corpus --------------------------------------------------------------------------------------------
    def corpus_view(self) -> tuple[Any, ...]:
        """(summary, document table, delete choices, source filter choices) as they are now."""
        import gradio as gr

        try:
            assistant = self.assistant()
            stats = assistant.stats()
            docs = assistant.documents()
            sources = assistant.sources()
        except RagError as exc:  # shown in the page
            return _problem(exc), [], gr.update(choices=[], value=None), gr.update()
        docs_word = "document" if stats["documents"] == 1 else "documents"
        chunks_word = "chunk" if stats["chunks"] == 1 else "chunks"
        summary = (f"**{stats['documents']} {docs_word}, {stats['chunks']} {chunks_word}** in "
                   f"`{assistant.settings.index_dir}`"
                   if stats["documents"] else "**The index is empty.** Upload articles below.")
        choices = [(f"{d.title or d.doc_id} ({d.source or 'no source'})", d.doc_id) for d in docs]
        return (summary, document_rows(docs), gr.update(choices=choices, value=None), gr.update(choices=sources))

    def ingest_uploads(self, files: Sequence[str] | None, progress: Any = None) -> tuple[Any, ...]:
        if not files:
            return ("<p>Choose files to upload first.</p>", *self.corpus_view())
        try:
            assistant = self.assistant()
            stored, refused = store_uploads(files, uploads_dir(assistant.settings.index_dir),
                                            assistant.settings.max_file_bytes)
            report = assistant.ingest(list(stored), on_file=_progress_callback(progress) if progress else None)
            names = {str(p.resolve()): n for p, n in stored.items()}
            message = render_report(report, names, refused)
        except RagError as exc:
            message = _problem(exc)
        return (message, *self.corpus_view())

    def delete_document(self, doc_id: str | None) -> tuple[Any, ...]:
        if not doc_id:
            return ("<p>Choose a document to delete.</p>", *self.corpus_view())
        try:
            removed = self.assistant().remove([doc_id])
            message = f"<p>Deleted {html.escape(doc_id)}.</p>" if removed else "<p>That document was already gone.</p>"
        except RagError as exc:
            message = _problem(exc)
        return (message, *self.corpus_view())

    def resync_corpus(self, progress: Any = None) -> tuple[Any, ...]:
        try:
            report = self.assistant().resync(on_file=_progress_callback(progress) if progress else None)
            message = render_report(report)
        except RagError as exc:
            message = _problem(exc)
        return (message, *self.corpus_view())


    # -- feeds ------------------------------------------------------------------------------------------------
    def fetch_feeds(self, urls_text: str, progress: Any = None) -> tuple[Any, ...]:
        """Ingest the listed feed and page URLs once."""
        from ingest.watch import urls_in

        try:
            urls = urls_in((urls_text or "").splitlines())
            if not urls:
                return ("<p>List feed or page URLs first, one per line.</p>", *self.corpus_view())
            report = self.assistant().ingest(urls, on_file=_progress_callback(progress) if progress else None)
            message = render_report(report)
        except RagError as exc:
            message = _problem(exc)
        return (message, *self.corpus_view())

    def start_watch(self, urls_text: str, minutes: float) -> str:
        from ingest.watch import Watcher, urls_in

        try:
            urls = urls_in((urls_text or "").splitlines())
            assistant = self.assistant()
        except RagError as exc:
            return _problem(exc)
        if not urls:
            return "<p>List feed URLs first, one per line.</p>"
        if self._watcher is None:
            self._watcher = Watcher(lambda batch, stop: assistant.ingest(batch, progress=False, stop=stop))
        self._watcher.start(urls, max(1.0, float(minutes or 15)) * 60)
        return self.watch_status()

    def stop_watch(self) -> str:
        if self._watcher is not None:
            self._watcher.stop()
        return self.watch_status()

    def watch_status(self) -> str:
        w = self._watcher
        if w is None or (not w.running and not w.polls):
            return "<p>Not watching any feed.</p>"
        state = (f"Watching {len(w.urls)} URL(s) every {w.every_s / 60:g} min" if w.running else "Stopped")
        out = f"<p><strong>{state}</strong>; {w.polls} poll(s) done.</p>"
        if w.last is not None:
            when = datetime.fromtimestamp(w.last_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            out += f"<p>Last poll, {when}:</p>" + render_report(w.last)
        if w.error:
            out += _problem(RagError(w.error))
        return out


def _progress_callback(progress: Any) -> Callable[[float, int], None]:
    """Gradio's bar for an ingest: its share done, and which file of how many (a big one moves it as it is read)."""
    def report(done: float, total: int) -> None:
        current = min(total, int(done) + 1)
        progress(done / max(1, total), desc=f"Reading and embedding: file {current} of {total}")

    return report


# -- formatting of the corpus tab ------------------------------------------------------------------------------
def describe_filters(sources: Sequence[str] | None, since: str, until: str, as_of: str = "") -> str:
    """The line under the question box saying which filters narrow the search (empty when none do).

    >>> describe_filters(["UNIAN"], "2022-01", "", "2022-07-10")
    'Questions asked as of 2022-07-10 (later articles unseen); searching only articles from UNIAN, published from 2022-01 (Settings).'
    >>> describe_filters([], "", "2022-06", "")
    'Searching only articles published until 2022-06 (Settings).'
    """
    narrowing = []
    if sources:
        narrowing.append("from " + ", ".join(_escape(s) for s in sources))
    if (since or "").strip():
        narrowing.append(f"published from {_escape(since.strip())}")
    if (until or "").strip():
        narrowing.append(f"published until {_escape(until.strip())}")
    parts = [f"Questions asked as of {_escape(as_of.strip())} (later articles unseen)"] if (as_of or "").strip() else []
    if narrowing:
        parts.append(f"{'searching' if parts else 'Searching'} only articles {', '.join(narrowing)}")
    return f"{'; '.join(parts)} (Settings)." if parts else ""


def render_report(report: Any, names: dict[str, str] | None = None, refused: Sequence[tuple[str, str]] = ()) -> str:
    """An ingest report as HTML: the counts, then every file that was skipped and why."""
    names = names or {}
    parts = [f"{report.added} added", f"{report.updated} updated", f"{report.unchanged} unchanged"]
    if report.removed:
        parts.append(f"{report.removed} removed")
    problems = [(name, reason) for name, reason in refused]
    problems += [(_uploaded_name(s.path, names), s.reason) for s in report.skipped]
    out = f"<p><strong>Done:</strong> {', '.join(parts)} ({report.chunks} chunks, {report.seconds:.1f} s).</p>"
    if problems:
        items = "".join(f"<li><strong>{html.escape(n)}</strong>: {html.escape(r)}</li>" for n, r in problems)
        out += f'<div class="ingest-errors"><p>⚠️ {len(problems)} file(s) not added:</p><ul>{items}</ul></div>'
    return out


def _uploaded_name(path: str, names: dict[str, str]) -> str:
    """The name the user uploaded a skipped file (or one of its records, "stored.jsonl:3") under.

    >>> _uploaded_name("/idx/uploads/aab6fbc8-bad.jsonl:3", {"/idx/uploads/aab6fbc8-bad.jsonl": "bad.jsonl"})
    'bad.jsonl:3'
    """
    found = re.fullmatch(r"(.*?)(:\d+)?", path)
    base, line = (found.group(1), found.group(2) or "") if found else (path, "")
    return names.get(str(Path(base).resolve()), Path(base).name) + line


def document_rows(docs: Sequence[Any]) -> list[list[Any]]:
    rows = []
    for d in docs:
        when = datetime.fromtimestamp(d.ingested_at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        rows.append([d.title or d.doc_id, d.source, d.published, d.chunks, when, d.doc_id])
    return rows



# -- the page ------------------------------------------------------------------------------------------------
def _example_text(gr: Any) -> Callable[..., str]:
    """The handler for a click on an example: Gradio passes the event data by the parameter's annotation."""

    def example_text(event: Any) -> str:
        return str(event.value["text"])

    example_text.__annotations__ = {"event": gr.SelectData, "return": str}
    return example_text


def build_ui(page: Page) -> Any:
    import gradio as gr

    from rag.generate.backends import describe

    try:
        settings = page.assistant().settings
    except RagError:  # shown on first use instead
        from rag.config import Settings

        settings = Settings()
    backends = ["extractive"] + ([settings.answer_backend] if settings.answer_backend != "extractive" else [])
    examples = page.examples()
    with gr.Blocks(title="News QA") as demo:
        gr.Markdown("## Ask the news corpus\nAnswers quote the articles and cite each quote; click a citation to "
                    "read it in its article. When the articles don't say, the assistant says so.")
        turns = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row():
                    with gr.Column(scale=3):
                        # No LaTeX: "$$…$$" in an article is its text, and a quote must read as its source does.
                        chatbot = gr.Chatbot(label="Chat", height=540, elem_id="chat", latex_delimiters=[],
                                             examples=[{"text": q} for q in examples] or None,
                                             placeholder=("Ask about the articles, or pick an example." if examples
                                                          else "Ask a question about the articles."),
                                             feedback_options=None, buttons=["copy"])
                        with gr.Row(equal_height=True):
                            box = gr.Textbox(placeholder="Ask a question about the articles…", show_label=False,
                                             scale=8, min_width=320, autofocus=True, elem_id="question")
                            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                            new_chat = gr.Button("New chat", variant="secondary", size="sm", scale=0, min_width=90,
                                                 elem_id="new-chat")
                        active_filters = gr.Markdown("", elem_id="active-filters")
                    with gr.Column(scale=2):
                        gr.Markdown("### Source")
                        panel = gr.HTML(render_panel([]), elem_id="source-panel")
                        with gr.Accordion("Settings", open=False, elem_id="settings"):
                            backend = gr.Dropdown(choices=backends, value=backends[-1], label="Answer backend",
                                                  visible=len(backends) > 1, elem_id="backend",
                                                  info=f"{backends[-1]}: {describe(settings)}")
                            top_k = gr.Slider(1, 10, value=settings.top_k, step=1, label="Passages to read (top-k)")
                            sources = gr.Dropdown(choices=[], value=[], multiselect=True, label="Sources",
                                                  allow_custom_value=True,
                                                  info="only articles from these sources (none: all)")
                            since = gr.Textbox(value="", label="Published from", placeholder="YYYY[-MM[-DD]]")
                            until = gr.Textbox(value="", label="Published until", placeholder="YYYY[-MM[-DD]]")
                            as_of = gr.Textbox(value="", label="Questions are asked as of", elem_id="as-of",
                                               placeholder="YYYY-MM-DD (empty: today)",
                                               info="\"this week\" and \"recently\" are read from this date; "
                                                    "articles published after it are not seen")
            with gr.Tab("Corpus", id="corpus"):
                summary = gr.Markdown()
                upload = gr.File(file_count="multiple", file_types=accepted_types(), label="Add articles",
                                 elem_id="upload", height=160)
                with gr.Row():
                    ingest = gr.Button("Ingest uploaded files", variant="primary", elem_id="ingest")
                    resync = gr.Button("Re-sync with files on disk", elem_id="resync")
                result = gr.HTML(elem_id="corpus-result")
                table = gr.Dataframe(headers=["Title", "Source", "Published", "Chunks", "Ingested", "Id"],
                                     datatype=["str", "str", "str", "number", "str", "str"], interactive=False,
                                     wrap=True, elem_id="documents", label="Documents",
                                     column_widths=["38%", "11%", "10%", "7%", "14%", "20%"])
                with gr.Row():
                    pick = gr.Dropdown(choices=[], label="Document to delete", scale=4, elem_id="pick")
                    delete = gr.Button("Delete document", variant="stop", scale=1, elem_id="delete")
                with gr.Accordion("Feeds and web pages", open=False, elem_id="feeds"):
                    feed_urls = gr.Textbox(lines=4, label="RSS/Atom feed or page URLs, one per line",
                                           placeholder="https://example.com/news/rss.xml", elem_id="feed-urls")
                    with gr.Row():
                        fetch = gr.Button("Fetch now", elem_id="fetch")
                        minutes = gr.Number(value=15, minimum=1, label="Check every (minutes)", scale=1,
                                            elem_id="watch-minutes")
                        start = gr.Button("Watch", variant="primary", elem_id="watch")
                        stop = gr.Button("Stop watching", elem_id="stop-watch")
                    watch_state = gr.HTML(elem_id="watch-status")
                    timer = gr.Timer(10)

        chat_in = [box, chatbot, turns, top_k, sources, since, until, backend, as_of]
        chat_out = [box, chatbot, panel, turns]
        # The reply's own "Searching the articles…" and its streaming text are the progress: no overlay on the chat.
        box.submit(page.respond, chat_in, chat_out, api_name="ask", show_progress="hidden")
        send.click(page.respond, chat_in, chat_out, api_visibility="private", show_progress="hidden")
        chatbot.example_select(_example_text(gr), None, box, api_visibility="private").then(
            page.respond, chat_in, chat_out, api_visibility="private", show_progress="hidden")
        new_chat.click(lambda: ("", [], render_panel([]), []), None, chat_out, api_visibility="private")
        gr.on([sources.change, since.change, until.change, as_of.change], describe_filters,
              [sources, since, until, as_of],
              active_filters, api_visibility="private", show_progress="hidden")
        view = [summary, table, pick, sources]
        bar = gr.Progress()  # Gradio hands each request its own tracker in place of this default
        ingest.click(lambda files, progress=bar: page.ingest_uploads(files, progress), upload,
                     [result, *view], api_visibility="private").then(lambda: None, None, upload,
                                                                     api_visibility="private")
        resync.click(lambda progress=bar: page.resync_corpus(progress), None, [result, *view],
                     api_visibility="private")
        delete.click(page.delete_document, pick, [result, *view], api_visibility="private")
        fetch.click(lambda urls, progress=bar: page.fetch_feeds(urls, progress), feed_urls, [result, *view],
                    api_visibility="private")
        start.click(page.start_watch, [feed_urls, minutes], watch_state, api_visibility="private")
        stop.click(page.stop_watch, None, watch_state, api_visibility="private")
        timer.tick(page.watch_status, None, watch_state, api_visibility="private", show_progress="hidden")
        demo.load(page.corpus_view, None, view, api_visibility="private")
        gr.api(page.api_answer, api_name="answer")
    demo.queue(default_concurrency_limit=4)
    return demo


def port_in_use(host: str, port: int) -> str:
    """Why `host:port` cannot be listened on ("" when it can): told before the models load, in our words rather than
    the web server's traceback."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"{host} is not an address of this machine: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
        try:
            probe.bind(address)
        except OSError as exc:
            return "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = argparse.ArgumentParser(prog="app.py", description="Serve the news QA chat page.")
    parser.add_argument("--index", help="index directory (default: $RAG_INDEX_DIR or ./.rag)")
    parser.add_argument("--port", type=int, help="port (default: $RAG_PORT or 7860)")
    parser.add_argument("--host", help="bind address (default: $RAG_HOST or 127.0.0.1, this machine only)")
    parser.add_argument("--share", action="store_true", help="also serve through a public Gradio share link")
    parser.add_argument("--no-auth", action="store_true",
                        help="serve a non-loopback address or share link without a login (not recommended)")
    args = parser.parse_args(argv)
    try:
        serve = ServeSettings.from_env(index_dir=args.index, port=args.port, host=args.host, share=args.share,
                                       no_auth=args.no_auth)
    except RagError as exc:
        print(f"app: error: {exc}", file=sys.stderr)
        return 2
    problem = serve.login_problem()
    if problem:
        print(f"app: error: {problem}", file=sys.stderr)
        return 2
    busy = port_in_use(serve.host, serve.port)
    if busy:
        print(f"app: error: cannot serve on {serve.host}:{serve.port} ({busy}): pass --port with a free port "
              "(or set RAG_PORT)", file=sys.stderr)
        return 1
    from rag.config import Settings

    try:
        index_dir = Settings.from_env().with_overrides(index_dir=serve.index_dir).index_dir
    except RagError as exc:
        print(f"app: error: {exc}", file=sys.stderr)
        return 2
    from rag.index.catalog import index_exists

    if not index_exists(index_dir):
        print(f"app: note: no index at {index_dir} yet: upload articles on the page, or run "
              f"`rag ingest PATH --index {index_dir}`", file=sys.stderr)
    page = Page(serve.index_dir)
    try:
        max_file_bytes = page.assistant().settings.max_file_bytes
    except RagError as exc:  # the page still starts and shows this on every request until it is fixed
        print(f"app: warning: {exc}", file=sys.stderr)
        max_file_bytes = 50 * 1024 * 1024
    demo = build_ui(page)
    from starlette.middleware import Middleware

    from rag.page_guard import PageGuard

    # Without a login, only a page on loopback may be served (login_problem): it answers loopback names only.
    guard = Middleware(PageGuard, loopback_only=serve.login is None and not serve.exposed)
    if not serve.share:  # Gradio's own lines would suggest `share=True`; a share link's address is Gradio's to print
        shown = f"[{serve.host}]" if ":" in serve.host else serve.host
        print(f"Serving on http://{shown}:{serve.port} (Ctrl-C to stop)", flush=True)
    demo.launch(server_name=serve.host, server_port=serve.port, share=serve.share, footer_links=["api"],
                auth=serve.login, max_file_size=max_file_bytes, head=_HEAD, css=_CSS,
                app_kwargs={"middleware": [guard]}, quiet=not serve.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
