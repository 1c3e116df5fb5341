"""Hostile sources: compression and memory bombs in every format stay under a stated memory ceiling, one bad file or
record never costs the rest, no record takes another file's article, and the page's edges hold.

Each hostile input is generated here (a few bytes to a megabyte on disk). Reading runs in a child process under the
ceiling (tests/bounded.py kills it the moment it passes, so a bomb fails its test in a second instead of taking the
machine). docs/LIMITS.md states each bound.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zlib
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from ingest.fetch import Fetcher, FetchError, FetchPolicy
from rag import Assistant
from rag.types import Filters
from tests.bounded import run_bounded
from tests.conftest import REPO, SEED
from tests.services import app_env, free_port, running
from tests.web_site import Site, page, rss

# Reading one hostile input (python, the readers and their libraries included) stays under this; reading it whole,
# as each bomb asks, would take gigabytes.
CEILING_MB = 256
BOMB_BYTES = 512 * 2**20  # what each bomb unpacks to


def _zeros_gzip(size: int, layers: int = 1) -> bytes:
    """`size` zero bytes gzipped `layers` times over, written without holding them."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as f:
        block = bytes(1 << 20)
        for _ in range(size // len(block)):
            f.write(block)
    data = out.getvalue()
    for _ in range(layers - 1):
        data = gzip.compress(data, compresslevel=9)
    return data


def _read(target: str, *extra: str) -> dict:
    done = run_bounded(["-m", "tests.hostile_read", target, *extra], CEILING_MB)
    assert not done.killed, f"reading {target} passed {CEILING_MB} MB (peak {done.peak_mb:.0f} MB)"
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


# -- fetch -------------------------------------------------------------------------------------------------------
def _encoded(site: Site, path: str, body: bytes, encoding: str) -> None:
    site.routes[path] = (200, {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": encoding}, body)


@pytest.mark.slow
def test_compression_bombs_through_fetch_are_refused_within_the_ceiling(site: Site) -> None:
    import brotli

    squeeze = brotli.Compressor(quality=5)
    block = bytes(1 << 20)
    br = b"".join(squeeze.process(block) for _ in range(BOMB_BYTES // len(block))) + squeeze.finish()
    _encoded(site, "/br", br, "br")
    _encoded(site, "/gzip-gzip", _zeros_gzip(BOMB_BYTES, layers=2), "gzip, gzip")
    _encoded(site, "/gzip", _zeros_gzip(BOMB_BYTES), "gzip")
    expected = {"/br": "Content-Encoding 'br' is not accepted", "/gzip-gzip": "encoded 2 times over",
                "/gzip": "unpacks to over the 10,485,760-byte limit"}
    for path, reason in expected.items():
        found = _read(site.base + path)
        assert reason in found["error"], (path, found)
    # An ordinary gzipped page is unpacked as before.
    _encoded(site, "/page", gzip.compress(page("The ferry left at noon. It came back at six.", title="Ferry")), "gzip")
    with Fetcher(FetchPolicy(allow_private=True, delay_s=0.0)) as fetcher:
        assert b"The ferry left at noon." in fetcher.get(site.base + "/page").content
        site.routes["/cut"] = (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"},
                               gzip.compress(page(" ".join(f"Sentence {i} of a page cut in transit."
                                                           for i in range(300))))[:300])
        with pytest.raises(FetchError, match="was cut"):
            fetcher.get(site.base + "/cut")


def _drip(handler: BaseHTTPRequestHandler) -> None:
    """Headers a byte every 0.2 s: every read is quick, the response never ends."""
    handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
    for _ in range(2000):
        handler.wfile.write(b"X")
        handler.wfile.flush()
        time.sleep(0.2)


def test_a_server_dripping_its_headers_is_cut_at_the_deadline(tmp_path: Path, site: Site) -> None:
    """The whole-response deadline (3x RAG_FETCH_TIMEOUT_S) covers the headers, robots.txt's too; the ingest
    holding the index lock ends by then, and the next one can write."""
    site.custom["/drip"] = _drip
    started = time.monotonic()
    with Fetcher(FetchPolicy(allow_private=True, delay_s=0.0, timeout_s=1.0)) as fetcher, \
            pytest.raises(FetchError, match="took over 3 s"):
        fetcher.get(site.base + "/drip")
    assert time.monotonic() - started < 6

    slow_robots = Site()
    slow_robots.custom["/robots.txt"] = _drip
    slow_robots.add("/page.html", page("A page behind a slow robots.txt. It is never read."))
    try:
        with Assistant(index_dir=tmp_path / "idx", fetch_allow_private=True, fetch_delay_s=0.0, fetch_timeout_s=1.0,
                       chunk_encoder="static") as assistant:
            started = time.monotonic()
            report = assistant.ingest([slow_robots.base + "/page.html"])
            assert time.monotonic() - started < 8
            assert "robots.txt could not be read" in report.skipped[0].reason, report.skipped
            (tmp_path / "c").mkdir()
            (tmp_path / "c" / "a.txt").write_text("Harbour news\n\nThe harbour reopened on Thursday.\n")
            assert assistant.ingest([tmp_path / "c"]).added == 1  # the lock was released
    finally:
        slow_robots.close()


def test_addresses_that_carry_a_private_ipv4_address_are_refused() -> None:
    with Fetcher(FetchPolicy(delay_s=0.0)) as fetcher:
        for url in ("http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/",
                    "http://[::ffff:10.0.0.1]/", "http://[64:ff9b:1::a00:1]/"):
            with pytest.raises(FetchError, match="private or loopback"):
                fetcher.check_allowed(url)


def test_a_url_with_a_password_is_not_fetched(tmp_path: Path, site: Site) -> None:
    site.add("/p.html", page("A page. It has two sentences."))
    url = site.base.replace("http://", "http://reader:secret@") + "/p.html"
    with Assistant(index_dir=tmp_path / "idx", fetch_allow_private=True, fetch_delay_s=0.0,
                   chunk_encoder="static") as assistant:
        report = assistant.ingest([url])
        assert report.added == 0 and "user name or password" in report.skipped[0].reason
        assert all("secret" not in d.doc_id for d in assistant.documents())
    assert site.log == []  # not robots.txt either: nothing was sent


def test_a_robots_txt_server_error_is_named_as_such(site: Site) -> None:
    site.add("/robots.txt", b"down", "text/plain", status=503)
    site.add("/p.html", page("A page."))
    with Fetcher(FetchPolicy(allow_private=True, delay_s=0.0)) as fetcher, \
            pytest.raises(FetchError, match=r"robots\.txt answered HTTP 503, a server error"):
        fetcher.get(site.base + "/p.html")


def _entries(site: Site, prefix: str, count: int) -> bytes:
    items = []
    for i in range(count):
        site.add(f"{prefix}/{i}.html", page(f"Entry {i} of the {prefix[1:]} feed: the quay counted {i + 2} boats. "
                                            "It was a calm day.", title=f"Entry {i}"))
        items.append((f"{prefix}/{i}.html", f"Entry {i}", "Fri, 01 Jul 2022 08:00:00 GMT"))
    return rss(items)


def test_a_feed_is_read_a_capped_number_of_entries_a_poll(tmp_path: Path, site: Site) -> None:
    site.add("/big.xml", _entries(site, "/big", 25), "application/rss+xml")
    with Assistant(index_dir=tmp_path / "idx", fetch_allow_private=True, fetch_delay_s=0.0, fetch_max_entries=10,
                   chunk_encoder="static") as assistant:
        first = assistant.ingest([site.base + "/big.xml"])
        assert first.added == 10 and "15 more new entries" in first.skipped[0].reason
        second = assistant.ingest([site.base + "/big.xml"])
        assert second.added == 10 and second.unchanged == 10
        third = assistant.ingest([site.base + "/big.xml"])
        assert third.added == 5 and not third.skipped and len(assistant.documents()) == 25


def test_each_feed_is_committed_when_it_is_read(tmp_path: Path, site: Site) -> None:
    """A poll of several feeds keeps each one read: the first feed's articles are in the index while the second
    is still being fetched."""
    site.add("/one.xml", _entries(site, "/one", 3), "application/rss+xml")
    site.add("/two.xml", rss([("/hang", "A page that never answers", "Fri, 01 Jul 2022 08:00:00 GMT")]),
             "application/rss+xml")
    index = tmp_path / "idx"
    with Assistant(index_dir=index, fetch_allow_private=True, fetch_delay_s=0.0, fetch_timeout_s=2.0,
                   chunk_encoder="static") as assistant:
        done = threading.Event()
        thread = threading.Thread(target=lambda: (assistant.ingest([site.base + "/one.xml", site.base + "/two.xml"]),
                                                  done.set()))
        thread.start()
        while site.requested("/hang") == 0 and thread.is_alive():
            time.sleep(0.05)
        committed = 0
        while thread.is_alive() and committed < 3:  # the second feed's page hangs until its deadline (6 s)
            with sqlite3.connect(index / "catalog.sqlite3") as db:  # another connection, while the poll goes on
                committed = db.execute("SELECT count(*) FROM documents").fetchone()[0]
            time.sleep(0.1)
        still_polling = thread.is_alive()
        thread.join(timeout=30)
        assert done.is_set() and committed == 3 and still_polling


# -- archives and datasets ------------------------------------------------------------------------------------------
def _warc(path: Path, count: int, gz: bool = True, host: str = "example.org") -> None:
    with warnings.catch_warnings():  # warcio's writer drops the temporary files of its digests unclosed
        warnings.simplefilter("ignore", ResourceWarning)
        _write_warc(path, count, gz, host)
        gc.collect()


def _write_warc(path: Path, count: int, gz: bool, host: str) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as f:
        writer = WARCWriter(f, gzip=gz)
        for i in range(count):
            body = page(f"Story number {i}: the harbour of Town{i} counted {i + 3} boats on Monday, officials said. "
                        "It was the largest count this year.", title=f"Story {i}")
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"http://{host}/story/{i}", "response",
                                                          payload=io.BytesIO(body), http_headers=headers))


def _no_target_warc(path: Path) -> None:
    """A response record without a WARC-Target-URI (184 bytes or so), which warcio itself fails on."""
    body = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body><p>x</p></body></html>"
    path.write_bytes(b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:1>\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body + b"\r\n\r\n")


@pytest.mark.slow
def test_memory_bombs_in_archives_and_datasets_stay_within_the_ceiling(tmp_path: Path) -> None:
    (tmp_path / "zeros.warc.gz").write_bytes(_zeros_gzip(BOMB_BYTES))  # a header line that never ends
    with (tmp_path / "field.csv").open("w", newline="") as f:  # a 100 MB field
        f.write("id,text\nok,A short article about the quay. It has two sentences.\n")
        f.write('big,"' + "word " * (100 * 2**20 // 5) + '"\n')
        f.write("after,Another article after the big one. It is read.\n")
    # The Parquet file is written by a child: its 300 MB cell must not sit in this process.
    code = ("import pyarrow as pa, pyarrow.parquet as pq, sys; pq.write_table(pa.table({'id': ['bomb', 'ok'], "
            "'text': ['x' * (300 * 2**20), 'A normal article. It has two sentences.']}), sys.argv[1], "
            "compression='zstd')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "cell.parquet")], check=True)
    code = ("import pyarrow as pa, pyarrow.parquet as pq, sys; pq.write_table(pa.table({'id': ['a', 'big', 'c'], "
            "'text': ['A first article. Short.', 'y' * (5 * 2**20), 'A third article. Short.']}), sys.argv[1], "
            "compression='zstd', row_group_size=1)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "long.parquet")], check=True)

    warc = _read(str(tmp_path / "zeros.warc.gz"))
    assert warc["records"] == 0 and "header line over 65,536 bytes" in warc["skipped"][0]
    field = _read(str(tmp_path / "field.csv"))
    assert field["records"] == 2 and "over the 1,000,000-character article limit" in field["skipped"][0]
    cell = _read(str(tmp_path / "cell.parquet"))
    assert cell["records"] == 0 and "compression bomb" in cell["skipped"][0]
    long = _read(str(tmp_path / "long.parquet"))  # not a bomb (a row group each): its cell is refused alone
    assert long["records"] == 2 and "'text' cell is 5,242,880 bytes" in long["skipped"][0]


def test_a_bad_warc_costs_only_itself(tmp_path: Path) -> None:
    """`rag ingest good.warc.gz bad.warc corpus/`: the response without a target URI is reported, the rest commits."""
    _warc(tmp_path / "good.warc.gz", 3)
    _no_target_warc(tmp_path / "bad.warc")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / SEED.name).write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(tmp_path / "good.warc.gz"),
                           str(tmp_path / "bad.warc"), str(corpus), "--index", str(tmp_path / "idx"), "--json"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["added"] == 4
    assert {s["reason"] for s in report["skipped"]} >= {"a response without a WARC-Target-URI"}


def test_a_cut_or_damaged_warc_is_reported_never_read_as_partial_text(tmp_path: Path) -> None:
    _warc(tmp_path / "a.warc.gz", 3, host="a.example")
    data = (tmp_path / "a.warc.gz").read_bytes()
    (tmp_path / "a.warc.gz").write_bytes(data[:-100])  # inside the last record's page
    _warc(tmp_path / "b.warc", 3, gz=False, host="b.example")
    raw = (tmp_path / "b.warc").read_bytes()
    (tmp_path / "b.warc").write_bytes(raw[:-80])
    _warc(tmp_path / "c.warc", 3, gz=False, host="c.example")
    raw = (tmp_path / "c.warc").read_bytes()
    (tmp_path / "c.warc").write_bytes(raw.replace(b"counted 4 boats", b"counted 9 boats"))  # its digest fails
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="static") as assistant:
        report = assistant.ingest([tmp_path / "a.warc.gz", tmp_path / "b.warc", tmp_path / "c.warc"])
        ids = sorted(d.doc_id for d in assistant.documents())
        texts = [assistant.article(i).text for i in ids]  # type: ignore[union-attr]
    reasons = {s.path.split("@")[0].rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    for cut in ("a.warc.gz", "b.warc"):
        assert "the archive is damaged after 2 page(s)" in reasons[cut], reasons
    assert "damaged record" in reasons["c.warc"] and "digest" in reasons["c.warc"], reasons
    assert ids == ["http://a.example/story/0", "http://a.example/story/1", "http://b.example/story/0",
                   "http://b.example/story/1", "http://c.example/story/0", "http://c.example/story/2"]
    assert not any("counted 9 boats" in t for t in texts)


# -- whose article an id is ------------------------------------------------------------------------------------------
def test_a_record_cannot_replace_another_files_article(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSONL record with another file's doc id is refused, whichever was ingested first; deleting the JSONL and
    syncing leaves the article, and later syncs agree with the index."""
    monkeypatch.chdir(tmp_path)
    corpus = Path("corpus")
    corpus.mkdir()
    (corpus / SEED.name).write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    spoof = {"id": f"corpus/{SEED.name}", "text": "Aliens requested the CSTO troops, the spoof says. It is false."}
    with Assistant(index_dir=Path("idx"), chunk_encoder="static") as assistant:
        assert assistant.ingest([corpus]).added == 1
        (corpus / "spoof.jsonl").write_text(json.dumps(spoof) + "\n")
        report = assistant.ingest([corpus])
        assert report.added == 0 and "another source's article" in report.skipped[0].reason
        answer = assistant.ask("Who requested CSTO troops?")
        assert "Tokayev" in answer.text and "Aliens" not in answer.text
        (corpus / "spoof.jsonl").unlink()
        assert assistant.ingest([corpus], sync=True).removed == 0
        again = assistant.ingest([corpus], sync=True)
        assert again.unchanged == 1 and len(assistant.documents()) == 1
    with Assistant(index_dir=Path("idx2"), chunk_encoder="static") as assistant:  # the record first
        Path("early.jsonl").write_text(json.dumps(spoof) + "\n")
        first = assistant.ingest([Path("early.jsonl")])
        assert first.added == 0 and "another source's article" in first.skipped[0].reason
        assert assistant.ingest([corpus]).added == 1


def test_a_file_whose_article_is_gone_is_read_again(tmp_path: Path) -> None:
    """An unchanged file whose article was removed from the index (by hand, or by an older release's spoof) is
    read again, not reported "unchanged"."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Harbour news\n\nThe harbour reopened on Thursday. Ferries ran again.\n")
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="static") as assistant:
        assistant.ingest([corpus])
        (doc,) = assistant.documents()
        with sqlite3.connect(tmp_path / "idx" / "catalog.sqlite3") as db:  # the document alone, its file kept
            db.execute("DELETE FROM documents WHERE doc_id = ?", (doc.doc_id,))
        report = assistant.ingest([corpus])
        assert report.added == 1 and report.unchanged == 0


# -- retrieval ------------------------------------------------------------------------------------------------------
def test_a_name_of_letters_and_digits_is_searched_whole(tmp_path: Path) -> None:
    """"Town7" is one word of the keyword index: asked about it among 200 near-identical stories (100 towns, two
    days each), each answer is the asked town's and day's."""
    import random

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = random.Random(0)
    counts: dict[tuple[int, int], int] = {}
    with (corpus / "towns.jsonl").open("w") as f:
        for town in range(1, 101):
            for day in (3, 7):
                counts[town, day] = rng.randint(100, 999)
                f.write(json.dumps({"id": f"town-{town}-day-{day}", "title": "Harbour count",
                                    "text": f"The harbour of Town{town} counted {counts[town, day]} boats on day {day}, "
                                            "its master said. The count was the highest of the season."}) + "\n")
    with Assistant(index_dir=tmp_path / "idx") as assistant:
        assistant.ingest([corpus])
        for town, day in ((7, 3), (77, 7), (12, 7)):
            answer = assistant.ask(f"How many boats did the harbour of Town{town} count on day {day}?")
            assert not answer.abstained and answer.citations[0].doc_id == f"town-{town}-day-{day}", answer.text
            assert f"{counts[town, day]} boats" in answer.text


# -- the page -------------------------------------------------------------------------------------------------------
def _get(url: str, host: str) -> int:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _login(url: str, password: str) -> tuple[int, str]:
    data = urllib.parse.urlencode({"username": "editor", "password": password}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "login", data=data), timeout=30) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.headers.get("Retry-After", "")


@pytest.mark.slow
def test_the_page_limits_logins_and_answers_only_loopback_names(tmp_path: Path, corpus_dir: Path) -> None:
    from gradio_client import Client

    index = tmp_path / "idx"
    with Assistant(index_dir=index) as assistant:
        assistant.ingest([corpus_dir])
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with running([sys.executable, "app.py", "--index", str(index), "--port", str(port)], url, tmp_path / "a.log",
                 timeout_s=120, env=app_env(), cwd=REPO):
        assert _get(url, f"127.0.0.1:{port}") == 200 and _get(url, f"localhost:{port}") == 200
        assert _get(url, f"rebound.example:{port}") == 421  # DNS rebinding: a name pointed at 127.0.0.1
        # "$$…$$" in an article is its text: the chat renders no LaTeX, so a quote reads as its source does.
        with urllib.request.urlopen(url + "config", timeout=30) as response:  # loopback only
            components = json.loads(response.read())["components"]
        chatbots = [c for c in components if c.get("type") == "chatbot"]
        assert chatbots and all(c["props"].get("latex_delimiters") == [] for c in chatbots)
        client = Client(url, verbose=False)
        assert not client.predict("Who requested CSTO troops?", 5, "UNIAN", api_name="/answer")["abstained"]
        for as_of, message in (("0001-01-01", "dates from 1800 to 2200"), ("2022-13-45", "is not a date")):
            with pytest.raises(Exception, match=message):
                client.predict("Who requested CSTO troops?", 5, [], "", "", "", as_of, api_name="/answer")
        with pytest.raises(Exception, match="top_k is how many passages are read"):
            client.predict("Who requested CSTO troops?", 1e9, api_name="/answer")

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with running([sys.executable, "app.py", "--index", str(index), "--port", str(port)], url, tmp_path / "b.log",
                 timeout_s=120, env=app_env(RAG_USERNAME="editor", RAG_PASSWORD="right-one"), cwd=REPO):
        assert _get(url, f"rebound.example:{port}") != 421  # a page with a login answers any name
        assert [_login(url, "wrong")[0] for _ in range(5)] == [400] * 5
        status, retry_after = _login(url, "wrong")
        assert status == 429 and int(retry_after) > 0
        assert _login(url, "right-one")[0] == 429  # not even the right password, from this client, for a while


def test_failed_logins_are_counted_per_client_in_a_sliding_window() -> None:
    from rag.page_guard import FailedLogins

    now = [0.0]
    logins = FailedLogins(attempts=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        logins.failed("10.0.0.1")
    assert logins.wait_s("10.0.0.1") == 60 and logins.wait_s("10.0.0.2") == 0
    now[0] = 30
    assert logins.wait_s("10.0.0.1") == 30
    now[0] = 61
    assert logins.wait_s("10.0.0.1") == 0
    logins.failed("10.0.0.1")
    logins.succeeded("10.0.0.1")
    assert logins.wait_s("10.0.0.1") == 0


def test_an_impossible_or_far_date_is_a_message_not_a_traceback(tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="static") as assistant:
        assistant.ingest([corpus_dir])
        assert not assistant.ask("Who requested CSTO troops?", filters=Filters(sources="UNIAN")).abstained
    for flag, value in (("--as-of", "0001-01-01"), ("--as-of", "9999-12-31"), ("--since", "2025-02-30")):
        done = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "Who requested CSTO troops?", flag, value,
                               "--index", str(tmp_path / "idx")], cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert value in done.stderr


def test_an_article_moved_between_files_is_kept_by_sync(tmp_path: Path) -> None:
    """`--sync` never deletes an article another file holds: one story in two JSONL files (the second refused),
    the first deleted, the article moves to the second in the same run."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    story = {"id": "wire-77", "text": "The ferry strike ended on Friday. Crossings resume on Monday."}
    (corpus / "a.jsonl").write_text(json.dumps(story) + "\n")
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="static") as assistant:
        assert assistant.ingest([corpus]).added == 1
        (corpus / "b.jsonl").write_text(json.dumps(story) + "\n")
        assert "another source's article" in assistant.ingest([corpus]).skipped[0].reason
        (corpus / "a.jsonl").unlink()
        report = assistant.ingest([corpus], sync=True)
        assert [d.doc_id for d in assistant.documents()] == ["wire-77"]
        assert report.removed == 1 and report.added == 1  # dropped with a.jsonl, taken by b.jsonl
        assert assistant.ingest([corpus], sync=True).unchanged == 1


def test_an_upload_of_any_readable_type_is_stored(tmp_path: Path) -> None:
    from rag.uploads import accepted_types, store_uploads

    assert {".warc", ".warc.gz", ".csv", ".parquet"} <= set(accepted_types())
    upload = tmp_path / "crawl.warc.gz"
    _warc(upload, 1)
    stored, refused = store_uploads([str(upload)], tmp_path / "uploads", 50 * 2**20)
    assert not refused and [p.name.endswith("-crawl.warc.gz") for p in stored] == [True]


def test_gzip_members_and_raw_deflate_are_read(site: Site) -> None:
    html = page("A page in two gzip members. It is read whole.")
    site.routes["/members"] = (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"},
                               gzip.compress(html[:50]) + gzip.compress(html[50:]))
    squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    site.routes["/raw"] = (200, {"Content-Type": "text/html", "Content-Encoding": "deflate"},
                           squeeze.compress(html) + squeeze.flush())
    with Fetcher(FetchPolicy(allow_private=True, delay_s=0.0)) as fetcher:
        assert fetcher.get(site.base + "/members").content == html
        assert fetcher.get(site.base + "/raw").content == html


def test_a_csv_field_over_the_limit_costs_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        writer.writerow(["a", "The first article. It is short."])
        writer.writerow(["b", "x" * 1_100_000])
        writer.writerow(["c", "The third article.\nIt spans two lines."])
    found = _read(str(path))
    assert found["records"] == 2 and "CSV row 2 is over the 1,000,000-character article limit" in found["skipped"][0]
