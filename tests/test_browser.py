"""The chat page end to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

The app runs as its own process on a loopback port over a real index of the seed article and a hostile article
whose title and text carry <script> and <img onerror>. Set RAG_SCREENSHOT_DIR to keep screenshots (`make
screenshots` writes the README's into docs/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag import Assistant
from tests.conftest import REPO, SEED
from tests.services import free_port, running

CHROMIUM = "/usr/bin/chromium"

HOSTILE = (
    "<img src=x onerror=\"window.__xss='title'\"> Harbour report\n\n"
    "The harbour of Vardø counted 41 trawlers in port on Monday. "
    "<script>window.__xss = 'text'</script> The harbour master said the ice had closed the northern channel.\n\n"
    "<img src=x onerror=\"window.__xss='img'\"> Fishermen expect the channel to reopen within a week.\n"
)
# Metadata is hostile too: a script in the title, an onerror in the source, a javascript: URL.
HOSTILE_JSONL = json.dumps({
    "id": "ferry-1", "title": "<script>window.__xss='title2'</script>Ferry report",
    "source": "<img src=x onerror=\"window.__xss='source'\">Coast Post", "url": "javascript:window.__xss='url'",
    "published": "2022-03-01",
    "text": "The ferry port of Kirkenes counted 17 ferries in March, the port's \"busiest\" month for R&D crews. "
            "The port authority said traffic had doubled.",
})
NEW_ARTICLE = (
    "Tromsø lantern festival draws record crowd\n\n"
    "The lantern festival in Tromsø drew 12,400 visitors on its opening night, the organisers said on Sunday. "
    "The festival runs for nine days along the harbour front.\n"
)
WAIT_MS = 60_000
MAX_UPLOAD_BYTES = 1_000_000


@pytest.fixture(scope="module")
def app_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser") / "index"


@pytest.fixture(scope="module")
def app_url(app_index: Path) -> Iterator[str]:
    root = app_index.parent
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    (corpus / "harbour.txt").write_text(HOSTILE, encoding="utf-8")
    (corpus / "ferry.jsonl").write_text(HOSTILE_JSONL + "\n", encoding="utf-8")
    with Assistant(index_dir=root / "index") as assistant:
        report = assistant.ingest([corpus])
        assert report.added == 3, report.as_dict()
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "RAG_MAX_FILE_BYTES": str(MAX_UPLOAD_BYTES)}
    env.pop("RAG_HOST", None)
    with running([sys.executable, "app.py", "--index", str(root / "index"), "--port", str(port)],
                 f"http://127.0.0.1:{port}/", root / "app.log", timeout_s=120, env=env, cwd=REPO):
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture()
def page(browser: Any, app_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    page.wait_for_selector("#question textarea", timeout=WAIT_MS)
    yield page
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("RAG_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


def ask(page: Any, question: str) -> Any:
    """Type a question, send it, and wait for the finished reply (the streaming cursor gone); returns it."""
    before = page.locator("#chat [data-testid=bot]").count()
    page.fill("#question textarea", question)
    page.click("#ask")
    return last_reply(page, before)


def last_reply(page: Any, before: int) -> Any:
    page.wait_for_function(
        """n => { const bots = document.querySelectorAll('#chat [data-testid=bot]');
                 if (bots.length <= n) return false;
                 const t = bots[bots.length - 1].innerText;
                 return !t.includes('▌') && !t.includes('Searching the articles'); }""",
        arg=before, timeout=WAIT_MS)
    return page.locator("#chat [data-testid=bot]").last


def wait_text(page: Any, element_id: str, text: str, present: bool = True, timeout_ms: int = WAIT_MS) -> None:
    """Wait until the element's visible text does (or does not) contain `text`."""
    page.wait_for_function("([id, text, present]) => { const el = document.getElementById(id);"
                           " return !!el && el.innerText.includes(text) === present; }",
                           arg=[element_id, text, present], timeout=timeout_ms)


def set_filter(page: Any, label: str, value: str, echo: str, present: bool = True) -> None:
    """Fill a settings field and wait for the line under the question box to echo it. The accordion renders its
    fields when it opens; a fill that lands before the field's listeners are attached is lost, so it is retried."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(5):
        page.get_by_label(label).fill(value)
        try:
            wait_text(page, "active-filters", echo, present, timeout_ms=3_000)
            return
        except PlaywrightTimeout:
            continue
    wait_text(page, "active-filters", echo, present)


def test_example_question_streams_a_cited_answer_and_opens_its_source(page: Any) -> None:
    chat = page.locator("#chat")
    assert chat.get_by_text("Who requested CSTO troops?").is_visible()  # examples on the empty chat
    # Record every state the reply goes through, to see it stream.
    page.evaluate("""() => {
        window.__states = [];
        new MutationObserver(() => {
            const bots = document.querySelectorAll('#chat [data-testid=bot]');
            if (bots.length) { const t = bots[bots.length - 1].innerText;
                               if (window.__states[window.__states.length - 1] !== t) window.__states.push(t); }
        }).observe(document.getElementById('chat'), {subtree: true, childList: true, characterData: true});
    }""")
    chat.get_by_text("Who requested CSTO troops?").click()
    reply = last_reply(page, 0)
    text = reply.inner_text()
    assert "Tokayev" in text and "CSTO" in text
    states = page.evaluate("window.__states")
    assert any("Searching the articles" in s for s in states), states
    assert sum("▌" in s for s in states) >= 3, f"the answer did not stream in: {states}"

    panel = page.locator("#source-panel")
    assert not panel.locator(".source-card").first.is_visible()
    reply.locator('a[href^="#src-"]').first.click()
    card = panel.locator(".source-card:visible")
    card.wait_for(timeout=5_000)
    assert card.count() == 1
    card_text = card.inner_text()
    assert "[1]" in card_text and "UNIAN" in card_text and "Special operation of the Russians" in card_text
    quote = card.locator("mark").inner_text()
    assert "Collective Security Treaty Organization" in quote
    # The quote sits inside its surrounding text, not alone.
    assert len(card.locator(".source-context").inner_text()) > len(quote) + 100
    assert page.url.endswith("/"), "a citation click must not navigate"
    screenshot(page, "chat.png")

    # A follow-up uses the history; New chat clears it.
    follow = ask(page, "Who did he give the interim duties of prime minister to?")
    assert "Smailov" in follow.inner_text()
    page.click("#new-chat")
    page.wait_for_function("document.querySelectorAll('#chat [data-testid=bot]').length === 0", timeout=WAIT_MS)
    assert page.locator("#source-panel .source-card").count() == 0


def test_refusal_reads_as_a_refusal(page: Any) -> None:
    reply = ask(page, "What is the capital of France?")
    assert "Not in the articles" in reply.inner_text()
    assert reply.locator("blockquote").count() == 1
    assert reply.locator('a[href^="#src-"]').count() == 0
    assert "⚠️" not in reply.inner_text()


def test_settings_change_answers_without_restart(page: Any) -> None:
    page.click("#settings")
    set_filter(page, "Published from", "2023", "published from 2023")
    reply = ask(page, "Who requested CSTO troops?")
    assert "Not in the articles" in reply.inner_text()  # the seed article is from 2022
    set_filter(page, "Published from", "last week", "published from last week")
    reply = ask(page, "Who requested CSTO troops?")
    assert "Check the date filter" in reply.inner_text()
    set_filter(page, "Published from", "", "published from", present=False)
    reply = ask(page, "Who requested CSTO troops?")
    assert "Tokayev" in reply.inner_text()
    # Asked as of a day before the article's year, it is not seen; a year named in the question is the period
    # the answer says it drew on.
    set_filter(page, "Questions are asked as of", "2021-12-31", "asked as of 2021-12-31")
    reply = ask(page, "Who requested CSTO troops?")
    assert "Not in the articles" in reply.inner_text()
    set_filter(page, "Questions are asked as of", "", "asked as of", present=False)
    reply = ask(page, "Who requested CSTO troops in 2022?")
    assert "Tokayev" in reply.inner_text() and "in 2022: articles of 2022-01-01 to 2022-12-31" in reply.inner_text()


def test_an_impossible_date_is_a_message_and_the_chat_stays(page: Any) -> None:
    """A well-formed but impossible "asked as of" date: a message in the reply, no error badges, the chat and the
    question kept; cleared, the same question is answered."""
    first = ask(page, "Who requested CSTO troops?")
    assert "Tokayev" in first.inner_text()
    page.click("#settings")
    set_filter(page, "Questions are asked as of", "2022-13-45", "asked as of 2022-13-45")
    reply = ask(page, "Who requested CSTO troops?")
    assert "Check the date filter" in reply.inner_text() and "2022-13-45 is not a date" in reply.inner_text()
    assert page.locator("#chat [data-testid=bot]").count() == 2  # the earlier answer is still there
    assert page.input_value("#question textarea") == "Who requested CSTO troops?"  # the question kept to retry
    assert page.locator(".toast-body, .error").count() == 0 and page.get_by_text("Error", exact=True).count() == 0
    set_filter(page, "Questions are asked as of", "", "asked as of", present=False)
    page.click("#ask")
    assert "Tokayev" in last_reply(page, 2).inner_text()


def test_the_question_box_leads_and_the_answer_needs_no_overlay(page: Any) -> None:
    """The question box takes most of the chat's width, "New chat" is smaller than "Ask", and while an answer comes
    in the chat shows the reply itself, never Gradio's "processing" overlay; no symbol the page uses needs a font
    Debian's Chromium lacks (only ⚠ is used)."""
    chat, box = page.locator("#chat").bounding_box(), page.locator("#question").bounding_box()
    send, new = page.locator("#ask").bounding_box(), page.locator("#new-chat").bounding_box()
    assert box["width"] >= 0.6 * chat["width"], (box, chat)
    assert new["width"] * new["height"] < send["width"] * send["height"], (new, send)
    page.evaluate("""() => { window.__overlay = false;
        new MutationObserver(() => { for (const el of document.querySelectorAll('#chat .progress-text, #chat .eta-bar'))
                                       if (el.offsetParent !== null) window.__overlay = el.innerText; })
            .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    reply = ask(page, "Who requested CSTO troops?")
    assert "Tokayev" in reply.inner_text()
    assert page.evaluate("window.__overlay") is False
    refusal = ask(page, "What is the capital of France?")
    text = page.locator("body").inner_text() + refusal.inner_text()
    assert not any(symbol in text for symbol in ("🛈", "🔎", "🗓")), text


def test_article_html_never_runs(page: Any) -> None:
    reply = ask(page, "How many trawlers were in the harbour of Vardø?")
    assert "41 trawlers" in reply.inner_text()
    for link in reply.locator('a[href^="#src-"]').all()[:2]:
        link.click()
        page.locator("#source-panel .source-card:visible").wait_for(timeout=5_000)
    panel_text = page.locator("#source-panel").inner_text()
    assert "onerror" in panel_text or "<script>" in panel_text or "<img" in panel_text
    assert page.evaluate("window.__xss") is None
    assert page.locator("#source-panel img, #chat img, #source-panel script").count() == 0

    page.get_by_role("tab", name="Corpus").click()
    wait_text(page, "documents", "Harbour report")
    assert "<img src=x" in page.locator("#documents").inner_text()
    assert page.evaluate("window.__xss") is None


def test_hostile_title_source_and_url_are_inert(page: Any) -> None:
    reply = ask(page, "How many ferries did the port of Kirkenes count?")
    assert "17 ferries" in reply.inner_text()
    # Escaped, yet shown as written: an apostrophe, quotes and an ampersand, never their HTML entities.
    assert 'the port\'s "busiest" month for R&D crews' in reply.inner_text()
    assert "&#x27;" not in reply.inner_text() and "&quot;" not in reply.inner_text() and "&amp;" not in reply.inner_text()
    reply.locator('a[href^="#src-"]').first.click()
    card = page.locator("#source-panel .source-card:visible")
    card.wait_for(timeout=5_000)
    text = card.inner_text()
    assert "<script>" in text and "onerror" in text  # shown as text
    assert "javascript:" not in text  # only http(s) URLs are shown (as links)
    assert page.locator('a[href^="javascript:"], [onerror], #source-panel img, #source-panel script').count() == 0
    for link in card.locator("a").all():  # clicking whatever link the card has runs nothing
        link.click(modifiers=["Control"])
    page.click("#settings")
    page.get_by_role("combobox", name="Sources").click()  # the source list renders the hostile source
    page.get_by_role("option").filter(has_text="Coast Post").first.wait_for(timeout=5_000)
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Corpus").click()
    wait_text(page, "documents", "Ferry report")
    page.get_by_role("combobox", name="Document to delete").click()
    page.get_by_role("option").filter(has_text="Ferry report").first.wait_for(timeout=5_000)
    page.keyboard.press("Escape")
    assert page.evaluate("window.__xss") is None


def test_hostile_uploads_stay_inside_the_index(page: Any, app_url: str, app_index: Path) -> None:
    """A file name climbing out with `..`, a shell script, a file over the size limit: only accepted types are
    stored, under <index>/uploads with generated names; the page says why the others were refused; nothing runs.
    The same through the HTTP upload route, bypassing the page's own checks."""
    import httpx

    from rag.uploads import store_uploads

    marker = Path("/tmp") / f"rag-escape-{os.getpid()}.txt"
    marker.unlink(missing_ok=True)
    uploads = app_index / "uploads"
    before = set(uploads.iterdir()) if uploads.exists() else set()
    page.get_by_role("tab", name="Corpus").click()
    wait_text(page, "documents", "Special operation")
    article = b"The ferry to Vardo left at dawn carrying 240 passengers. It returned at noon.\n"
    page.set_input_files("#upload input[type=file]", [
        {"name": f"../../../../../../tmp/{marker.name}", "mimeType": "text/plain", "buffer": article}])
    page.locator("#upload").get_by_text("rag-escape").first.wait_for(timeout=WAIT_MS)
    page.click("#ingest")
    wait_text(page, "corpus-result", "Done:")
    assert "1 added" in page.locator("#corpus-result").inner_text()
    stored = set(uploads.iterdir()) - before
    assert len(stored) == 1 and not marker.exists()
    assert re.fullmatch(r"[0-9a-f]{16}-[A-Za-z0-9_-]+\.txt", next(iter(stored)).name), stored

    for payload, refusal in (
        ({"name": "run-me.sh", "mimeType": "text/x-sh", "buffer": b"#!/bin/sh\ntouch /tmp/rag-pwned\n"},
         "Invalid file type"),
        ({"name": "big.txt", "mimeType": "text/plain", "buffer": b"word " * (MAX_UPLOAD_BYTES // 5 + 1000)},
         "exceed the maximum allowed size"),
    ):
        wait_text(page, "upload", "Click to Upload")  # the upload box emptied after the last ingest
        page.set_input_files("#upload input[type=file]", [payload])
        page.locator(".toast-body").filter(has_text=refusal).first.wait_for(timeout=WAIT_MS)
        page.locator(".toast-body").filter(has_text=refusal).first.locator("button").first.click()
    assert set(uploads.iterdir()) - before == stored and not Path("/tmp/rag-pwned").exists()

    # Past the page: the server refuses the size itself and keeps only the base name of a climbing path; the
    # ingest step refuses types it does not read.
    route = app_url + "gradio_api/upload"
    assert httpx.post(route, files=[("files", ("big.txt", b"w" * (MAX_UPLOAD_BYTES + 1), "text/plain"))]
                      ).status_code == 413
    paths = httpx.post(route, files=[("files", (f"../../../../tmp/{marker.name}", article, "text/plain")),
                                     ("files", ("run-me.sh", b"#!/bin/sh\n", "text/x-sh"))]).json()
    assert not marker.exists() and all(Path(p).name in (marker.name, "run-me.sh") for p in paths)
    kept, refused = store_uploads(paths, uploads, MAX_UPLOAD_BYTES)
    assert [name for name, _ in refused] == ["run-me.sh"] and "unsupported file type" in refused[0][1]
    assert all(p.parent == uploads for p in kept)

    page.get_by_role("tab", name="Chat").click()
    reply = ask(page, "How many passengers did the ferry to Vardo carry?")
    assert "240 passengers" in reply.inner_text()


def test_upload_ingest_ask_and_delete(page: Any, tmp_path: Path) -> None:
    good = tmp_path / "lanterns.txt"
    good.write_text(NEW_ARTICLE, encoding="utf-8")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\nxref\n0 1\ngarbage\ntrailer <<>>\n%%EOF\n")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")

    page.get_by_role("tab", name="Corpus").click()
    wait_text(page, "documents", "Special operation")
    page.set_input_files("#upload input[type=file]", [str(good), str(broken), str(empty)])
    page.locator("#upload").get_by_text("lanterns.txt").first.wait_for(timeout=WAIT_MS)
    page.click("#ingest")
    result = page.locator("#corpus-result")
    wait_text(page, "corpus-result", "Done:")
    text = result.inner_text()
    assert "1 added" in text, text
    assert "broken.pdf" in text and "empty.txt" in text, text
    wait_text(page, "documents", "Tromsø lantern festival")
    screenshot(page, "corpus.png")

    page.get_by_role("tab", name="Chat").click()
    reply = ask(page, "How many visitors did the lantern festival in Tromsø draw?")
    assert "12,400" in reply.inner_text()

    page.get_by_role("tab", name="Corpus").click()
    page.locator("#resync").click()
    wait_text(page, "corpus-result", "unchanged")
    page.get_by_role("combobox", name="Document to delete").click()
    page.get_by_role("option", name="Tromsø lantern festival").first.click()
    page.click("#delete")
    wait_text(page, "corpus-result", "Deleted")
    wait_text(page, "documents", "Tromsø lantern festival", present=False)
    page.get_by_role("tab", name="Chat").click()
    reply = ask(page, "How many visitors did the lantern festival in Tromsø draw?")
    assert "12,400" not in reply.inner_text()
