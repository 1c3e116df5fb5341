"""Feeds, pages, crawl archives and datasets, each through the real ingest: a test's own HTTP server on loopback
(RSS, Atom, pages, a redirect, errors, a hanging page, a 30 MB page, robots.txt, a feed that changes between
polls), a WARC file written with warcio, CSV and Parquet files written with the csv module and pyarrow.
Nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.fetch import Fetcher, FetchError, FetchPolicy
from ingest.watch import parse_interval, read_url_list
from rag import Assistant
from rag.errors import ConfigError
from tests.conftest import REPO
from tests.index_checks import consistency_faults, index_state, same_as_clean
from tests.web_site import COMMENTS, COOKIE_BANNER, Site, atom, page, rss

PARAGRAPHS = [
    "The harbour authority of Vardø said on Monday that forty-one trawlers were kept in port by the ice, the "
    "largest number since the winter of 1987, and that the northern channel would stay closed until Thursday.",
    "Fish prices at the Tromsø market rose by a fifth during the week, traders said, as buyers from the south "
    "competed for the little cod that reached the quay before the storm.",
    "The mayor, Ingrid Solheim, asked the coastal administration for a second icebreaker and said the town's "
    "fuel stocks would last eleven days if the road over the mountain also closed.",
]


# Sources are what these tests are about: chunks are embedded with the static table, fast (tests/test_embed.py
# covers both chunk encoders).
STATIC = {"chunk_encoder": "static"}


def _assistant(index: Path, **overrides: object) -> Assistant:
    return Assistant(index_dir=index, fetch_allow_private=True, fetch_delay_s=0.0, fetch_timeout_s=1.0,
                     **STATIC, **overrides)  # type: ignore[arg-type]


def test_feeds_and_pages_are_ingested_or_refused_with_their_reason(tmp_path: Path, site: Site) -> None:
    site.add("/a/1.html", page(PARAGRAPHS[0] + "\n\n" + PARAGRAPHS[2]))  # no title or date: the feed's fill them
    site.add("/a/2.html", page(PARAGRAPHS[1], title="Fish prices rise in Tromsø", date="2022-07-02",
                               extra=COOKIE_BANNER + COMMENTS))
    site.add("/old-link", b"", status=301, Location="/a/3.html")
    site.add("/a/3.html", page(PARAGRAPHS[2] + "\n\n" + PARAGRAPHS[0], title="Mayor asks for an icebreaker"))
    site.add("/error", b"oops", "text/plain", status=500)
    site.add("/private/secret.html", page(PARAGRAPHS[1], title="Secret"))
    site.add("/rss.xml", rss([
        ("/a/1.html", "Ice keeps 41 trawlers in Vardø", "Fri, 01 Jul 2022 08:00:00 GMT"),
        ("/a/2.html", "Fish prices", "Sat, 02 Jul 2022 09:00:00 GMT"),
        ("/old-link", "Icebreaker", "Sat, 02 Jul 2022 10:00:00 GMT"),
        ("/missing", "Gone", "Sat, 02 Jul 2022 11:00:00 GMT"),
        ("/error", "Broken", "Sat, 02 Jul 2022 12:00:00 GMT"),
        ("/hang", "Slow", "Sat, 02 Jul 2022 13:00:00 GMT"),
        ("/huge", "Huge", "Sat, 02 Jul 2022 14:00:00 GMT"),
        ("/private/secret.html", "Secret", "Sat, 02 Jul 2022 15:00:00 GMT"),
    ]), "application/rss+xml")
    site.add("/atom.xml", atom([("/b/1.html", "Storm closes the mountain road", "2022-07-03T07:00:00Z")]),
             "application/atom+xml")
    site.add("/b/1.html", page(PARAGRAPHS[2], title="Storm closes the mountain road"))
    with _assistant(tmp_path / "idx") as assistant:
        report = assistant.ingest([f"{site.base}/rss.xml", f"{site.base}/atom.xml", f"{site.base}/a/3.html",
                                   "file:///etc/passwd", "ftp://127.0.0.1/x"])
        reasons = {s.path.replace(site.base, ""): s.reason for s in report.skipped}
        assert "HTTP 404" in reasons["/missing"] and "HTTP 500" in reasons["/error"]
        assert "timed out" in reasons["/hang"]
        assert "byte limit" in reasons["/huge"]
        assert "robots.txt" in reasons["/private/secret.html"]
        assert "only http and https" in reasons["file:///etc/passwd"] and "only http" in reasons["ftp://127.0.0.1/x"]
        assert site.requested("/private/secret.html") == 0, "a path robots.txt disallows is never requested"
        assert site.requested("/robots.txt") == 1
        docs = {d.doc_id.replace(site.base, ""): d for d in assistant.documents()}
        assert set(docs) == {"/a/1.html", "/a/2.html", "/old-link", "/a/3.html", "/b/1.html"}

        first = assistant.catalog.article(f"{site.base}/a/1.html")
        assert first is not None
        assert first.title == "Ice keeps 41 trawlers in Vardø" and first.published.startswith("2022-07-01")
        assert first.authors == ("Kari Nordmann",) and first.source == "Harbour Herald"
        second = assistant.catalog.article(f"{site.base}/a/2.html")
        assert second is not None and second.title == "Fish prices rise in Tromsø"
        assert "cookies" not in second.text and "Reader42" not in second.text
        assert any("Reader42" in c for c in second.comments)
        moved = assistant.catalog.article(f"{site.base}/old-link")
        assert moved is not None and moved.url == f"{site.base}/a/3.html"
        atom_entry = assistant.catalog.article(f"{site.base}/b/1.html")
        assert atom_entry is not None and atom_entry.authors == ("Ola Fjord",)
        assert report.urls[f"{site.base}/rss.xml"]["added"] == 3
        assert report.urls[f"{site.base}/rss.xml"]["skipped"] == 5
        answer = assistant.ask("Who asked the coastal administration for a second icebreaker?")
        assert "Ingrid Solheim" in answer.text and answer.citations


def test_a_second_poll_ingests_exactly_the_changed_entries(tmp_path: Path, site: Site) -> None:
    items = [("/c/1.html", "Ice in Vardø", "Fri, 01 Jul 2022 08:00:00 GMT"),
             ("/c/2.html", "Fish prices", "Sat, 02 Jul 2022 09:00:00 GMT")]
    site.add("/c/1.html", page(PARAGRAPHS[0], title="Ice in Vardø"))
    site.add("/c/2.html", page(PARAGRAPHS[1], title="Fish prices"))
    site.add("/feed.xml", rss(items), "application/rss+xml", ETag='"v1"')
    feed = f"{site.base}/feed.xml"
    with _assistant(tmp_path / "idx") as assistant:
        assert assistant.ingest([feed]).added == 2
        # Unchanged: one conditional request, answered 304; nothing fetched, nothing embedded.
        before = len(site.log)
        again = assistant.ingest([feed])
        assert site.log[before:] == [("/feed.xml", site.log[before][1])]
        assert site.log[before][1].get("if-none-match") == '"v1"'
        assert (again.added, again.updated, again.unchanged, again.embedded) == (0, 0, 2, 0)
        # The feed changes: entry 2 is updated (new date, new text), entry 3 is new, entry 1 drops off the feed.
        site.add("/c/2.html", page(PARAGRAPHS[1] + "\n\n" + PARAGRAPHS[2], title="Fish prices, updated"))
        site.add("/c/3.html", page(PARAGRAPHS[2], title="Mayor asks for help"))
        site.add("/feed.xml", rss([("/c/2.html", "Fish prices", "Sun, 03 Jul 2022 09:00:00 GMT"),
                                   ("/c/3.html", "Mayor asks for help", "Sun, 03 Jul 2022 10:00:00 GMT")]),
                 "application/rss+xml", ETag='"v2"')
        before = len(site.log)
        third = assistant.ingest([feed])
        fetched = [p for p, _ in site.log[before:]]
        assert fetched == ["/feed.xml", "/c/2.html", "/c/3.html"], fetched
        assert (third.added, third.updated) == (1, 1)
        ids = {d.doc_id.replace(site.base, "") for d in assistant.documents()}
        assert ids == {"/c/1.html", "/c/2.html", "/c/3.html"}, "an entry that left the feed keeps its document"
        updated = assistant.catalog.article(f"{site.base}/c/2.html")
        assert updated is not None and "icebreaker" in updated.text


def test_one_story_in_two_feeds_is_fetched_once(tmp_path: Path, site: Site) -> None:
    site.add("/d/1.html", page(PARAGRAPHS[0], title="Ice in Vardø"))
    site.add("/d/2.html", page(PARAGRAPHS[1], title="Fish prices"))
    site.add("/top.xml", rss([("/d/1.html", "Ice in Vardø", "Fri, 01 Jul 2022 08:00:00 GMT")]), "application/rss+xml")
    site.add("/world.xml", rss([("/d/1.html", "Ice in Vardø", "Fri, 01 Jul 2022 08:00:00 GMT"),
                                ("/d/2.html", "Fish prices", "Fri, 01 Jul 2022 09:00:00 GMT")]), "application/rss+xml")
    with _assistant(tmp_path / "idx") as assistant:
        report = assistant.ingest([f"{site.base}/top.xml", f"{site.base}/world.xml"])
        assert (report.added, report.skipped) == (2, [])
        assert report.urls[f"{site.base}/world.xml"] == {"added": 1, "updated": 0, "unchanged": 1, "skipped": 0}
        records = {r.path: set(r.doc_ids) for r in assistant.catalog.file_records()}
        assert f"{site.base}/d/1.html" in records[f"{site.base}/world.xml"] & records[f"{site.base}/top.xml"]


def test_fetching_is_polite_and_refuses_private_addresses(site: Site) -> None:
    site.add("/p.html", page(PARAGRAPHS[0], title="A"))
    site.add("/robots.txt", b"User-agent: *\nCrawl-delay: 1\nDisallow: /private/\n", "text/plain")
    with Fetcher(FetchPolicy(allow_private=False)) as fetcher, pytest.raises(FetchError, match="private or loopback"):
        fetcher.get(f"{site.base}/p.html")
    assert site.log == [], "nothing is requested from a refused address"
    with Fetcher(FetchPolicy(allow_private=True, delay_s=0.0)) as fetcher:
        for _ in range(3):
            fetcher.get(f"{site.base}/p.html")
    agents = {h.get("user-agent", "") for _, h in site.log}
    assert len(agents) == 1 and agents.pop().startswith("news-rag/")
    # robots.txt's Crawl-delay spaces the requests to its host (measured where they arrive).
    times = site.times
    assert len(times) == 4 and all(b - a >= 0.95 for a, b in itertools.pairwise(times)), times


def test_a_redirected_robots_txt_is_followed(site: Site) -> None:
    site.add("/robots.txt", b"", status=301, Location="/rules.txt")
    site.add("/rules.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain")
    site.add("/private/p.html", page(PARAGRAPHS[0], title="A"))
    with Fetcher(FetchPolicy(allow_private=True, delay_s=0.0)) as fetcher, pytest.raises(FetchError, match="robots"):
        fetcher.get(f"{site.base}/private/p.html")
    assert [p for p, _ in site.log] == ["/robots.txt", "/rules.txt"]
    # A robots.txt that redirects to nothing (404) means no rules; a 500 means the host is not crawled.
    for status, allowed in ((404, True), (500, False)):
        other = Site()
        try:
            other.add("/robots.txt", b"", status=302, Location="/gone.txt")
            other.add("/gone.txt", b"", "text/plain", status=status)
            other.add("/p.html", page(PARAGRAPHS[0], title="A"))
            with Fetcher(FetchPolicy(allow_private=True, delay_s=0.0)) as fetcher:
                if allowed:
                    assert fetcher.get(f"{other.base}/p.html").status == 200
                else:
                    with pytest.raises(FetchError, match="robots"):
                        fetcher.get(f"{other.base}/p.html")
            assert other.requested("/p.html") == int(allowed)
        finally:
            other.close()


def test_the_url_list_and_interval_are_checked(tmp_path: Path) -> None:
    listing = tmp_path / "feeds.txt"
    listing.write_text("# my feeds\nhttps://a.example/rss.xml\n\nhttps://b.example/atom.xml  # the second\n"
                       "https://a.example/rss.xml\n")
    assert read_url_list([str(listing), "https://c.example/feed"]) == [
        "https://a.example/rss.xml", "https://b.example/atom.xml", "https://c.example/feed"]
    listing.write_text("not a url\n")
    with pytest.raises(ConfigError, match=r"feeds\.txt:1: not a URL"):
        read_url_list([str(listing)])
    assert parse_interval("15m") == 900 and parse_interval("2h") == 7200 and parse_interval("45") == 45
    with pytest.raises(ConfigError):
        parse_interval("soon")


def _articles(count: int) -> list[dict[str, str]]:
    """`count` distinct short news items (real sentences, recombined)."""
    towns = ["Vardø", "Tromsø", "Bodø", "Alta", "Hammerfest", "Kirkenes", "Narvik", "Harstad"]
    return [{"id": f"item-{i}", "title": f"Harbour report {i} from {towns[i % 8]}",
             "text": f"Report {i} from {towns[i % 8]}. " + PARAGRAPHS[i % 3] + " " + PARAGRAPHS[(i + 1) % 3],
             "url": f"https://news.example/{i}", "date": f"2022-07-{1 + i % 28:02d}", "source": "Harbour Herald"}
            for i in range(count)]


# warcio's writer (used here only to make the archive) leaves its SpooledTemporaryFile buffers to the collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_warc_archive_is_ingested_page_by_page(tmp_path: Path) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "crawl.warc.gz"
    items = _articles(40)
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for i, item in enumerate(items):
            body = page(item["text"], title=item["title"])
            if i == 17:  # the malformed record: an HTML response with no article in it
                body = b"<html><body><div></div></body></html>"
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(item["url"], "response", payload=io.BytesIO(body),
                                                          http_headers=headers))
            if i % 10 == 0:  # requests, non-HTML responses and errors are passed over or reported
                writer.write_record(writer.create_warc_record(item["url"], "request", payload=io.BytesIO(b"GET /")))
                writer.write_record(writer.create_warc_record(
                    item["url"] + ".png", "response", payload=io.BytesIO(b"\x89PNG"),
                    http_headers=StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")))
    with Assistant(index_dir=tmp_path / "idx", **STATIC) as assistant:
        report = assistant.ingest([path])
        assert report.added == 39 and len(report.skipped) == 1, report.skipped
        assert "no article text" in report.skipped[0].reason and items[17]["url"] in report.skipped[0].path
        article = assistant.catalog.article(items[3]["url"])
        assert article is not None and article.url == items[3]["url"] and article.title == items[3]["title"]
        assert article.published, "the WARC-Date fills a page without a date"
        again = assistant.ingest([path])
        assert again.embedded == 0 and again.unchanged == 39


def test_csv_and_parquet_datasets_stream_in_bounded_memory(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    items = _articles(3000)
    table = {k: [item[k] for item in items] for k in ("id", "title", "text", "url", "date", "source")}
    table["text"][1234] = None  # the malformed record: no text
    parquet = tmp_path / "news.parquet"
    pq.write_table(pa.table(table), parquet, row_group_size=500)
    with Assistant(index_dir=tmp_path / "idx", **STATIC) as assistant:
        report = assistant.ingest([parquet])
        assert report.added == 2999 and len(report.skipped) == 1
        assert "row 1235 has no text" in report.skipped[0].reason
        article = assistant.catalog.article("item-42")
        assert article is not None and article.title == items[42]["title"] and article.published.startswith("2022-07")
        assert assistant.ingest([parquet]).embedded == 0

    # CSV, with the text under another name mapped by --columns, and a row with too many fields.
    listing = tmp_path / "news.csv"
    with listing.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["headline", "story", "link", "published"])
        for i, item in enumerate(items[:200]):
            writer.writerow([item["title"], item["text"], item["url"], item["date"]]
                            + (["surplus"] if i == 50 else []))
    result = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(listing), "--index", str(tmp_path / "csv"),
                             "--columns", "text=story", "--json"], capture_output=True, text=True, cwd=REPO,
                            timeout=600, env={**os.environ, "RAG_CHUNK_ENCODER": "static"})
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["added"] == 199 and len(out["skipped"]) == 1 and "5 fields" in out["skipped"][0]["reason"]


def test_a_large_parquet_file_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """Reading (not embedding) Parquet files of about 100 and 300 MB of text: the peak memory of the larger is
    the smaller's, give or take a little, so it does not grow with the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = " ".join(PARAGRAPHS) * 6  # ~3.7k characters

    def peak_mb(groups: int) -> tuple[int, float]:
        parquet = tmp_path / f"big-{groups}.parquet"
        writer = pq.ParquetWriter(parquet, pa.schema([("id", pa.string()), ("text", pa.string())]),
                                  compression="none")
        for group in range(groups):
            ids = [f"g{group}-{i}" for i in range(1000)]
            writer.write_table(pa.table({"id": ids, "text": [f"{i} {base}" for i in ids]}))
        writer.close()
        # The peak from /proc (VmHWM): getrusage's ru_maxrss would be pytest's own, kept across exec.
        code = ("import sys; from ingest.load import discover, read_records; "
                "files, _ = discover([sys.argv[1]]); n = sum(1 for _ in read_records(files[0], 50_000_000)); "
                "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')); "
                "print(n, int(peak.split()[1]) // 1024)")
        result = subprocess.run([sys.executable, "-c", code, str(parquet)], capture_output=True, text=True,
                                cwd=REPO, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        records, peak = (int(x) for x in result.stdout.split())
        assert records == 1000 * groups
        size_mb = parquet.stat().st_size / 2**20
        parquet.unlink()
        return peak, size_mb

    small_peak, small_mb = peak_mb(30)
    large_peak, large_mb = peak_mb(90)
    assert large_mb > 250 and small_mb > 90
    assert large_peak < small_peak + 40, (small_peak, large_peak)
    assert large_peak < large_mb, "less memory than the file's size"


@pytest.mark.slow
def test_rag_watch_killed_mid_poll_leaves_a_consistent_index(tmp_path: Path, site: Site) -> None:
    items = _articles(60)
    for i, item in enumerate(items):
        site.add(f"/w/{i}.html", page(item["text"], title=item["title"]))
    site.add("/watch.xml", rss([(f"/w/{i}.html", item["title"], "Fri, 01 Jul 2022 08:00:00 GMT")
                               for i, item in enumerate(items)]), "application/rss+xml")
    index = tmp_path / "idx"
    env = {"RAG_FETCH_DELAY_S": "0.05", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "RAG_CHUNK_ENCODER": "static"}
    command = [sys.executable, "-m", "rag.cli", "watch", f"{site.base}/watch.xml", "--every", "1s", "--index",
               str(index), "--allow-private"]
    log = tmp_path / "watch.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 300
        while site.requested("/w/40.html") == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None, log.read_text()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    with Assistant(index_dir=index) as partial:
        assert consistency_faults(index_state(partial)) == []
        committed = {d.doc_id for d in partial.documents()}
    assert len(committed) < 60, "killed mid-poll: not everything was committed"
    # The next watch completes the poll; the index is then the one a clean ingest of the feed makes.
    done = subprocess.run([*command, "--polls", "1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with _assistant(tmp_path / "clean") as clean:
        clean.ingest([f"{site.base}/watch.xml"])
        expected = index_state(clean)
    with Assistant(index_dir=index) as final:
        assert same_as_clean(index_state(final), expected) == []
        assert committed <= {d.doc_id for d in final.documents()}


def test_rag_watch_stops_between_feeds_on_sigterm(tmp_path: Path, site: Site) -> None:
    site.add("/s/1.html", page(PARAGRAPHS[0], title="One"))
    site.add("/s.xml", rss([("/s/1.html", "One", "Fri, 01 Jul 2022 08:00:00 GMT")]), "application/rss+xml")
    env = {"RAG_FETCH_DELAY_S": "0", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "RAG_CHUNK_ENCODER": "static"}
    with subprocess.Popen([sys.executable, "-m", "rag.cli", "watch", f"{site.base}/s.xml", "--every", "1h",
                           "--index", str(tmp_path / "idx"), "--allow-private", "--json"],
                          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # the first poll's report, then it sleeps for an hour
        assert first["poll"] == 1 and first["added"] == 1
        assert first["urls"][f"{site.base}/s.xml"]["added"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_the_corpus_tab_fetches_and_watches_feeds(tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    monkeypatch.setenv("RAG_FETCH_ALLOW_PRIVATE", "true")  # the test's own server is on loopback
    monkeypatch.setenv("RAG_FETCH_DELAY_S", "0")
    monkeypatch.setenv("RAG_CHUNK_ENCODER", "static")
    site.add("/t/1.html", page(PARAGRAPHS[0], title="Ice in Vardø"))
    site.add("/t.xml", rss([("/t/1.html", "Ice in Vardø", "Fri, 01 Jul 2022 08:00:00 GMT")]), "application/rss+xml",
             ETag='"t1"')
    tab = app.Page(str(tmp_path / "idx"))
    message, summary, *_ = tab.fetch_feeds(f"# news\n{site.base}/t.xml\n")
    assert "1 added" in message and "1 document, " in summary
    assert "not a URL" in tab.fetch_feeds("example.com/feed")[0]
    assert "Watching 1 URL(s) every 1 min" in tab.start_watch(f"{site.base}/t.xml", 1)
    deadline = time.monotonic() + 60
    while tab._watcher.polls < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "1 unchanged" in tab.watch_status()
    assert "Stopped" in tab.stop_watch() and not tab._watcher.running
    tab.assistant().close()
