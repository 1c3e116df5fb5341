"""URLs -> raw records: a feed (RSS 2.0, Atom) and the page of each of its entries, or one page.

A URL's record in the catalog keeps its validator: the ETag and Last-Modified of the last answer, and for a feed
each entry's fingerprint (link, dates, title). The next poll asks conditionally (an unchanged feed costs one
304), and of a changed feed fetches only the pages of entries that are new or whose fingerprint changed. An
entry's page is its article, under the entry's link as id: a page whose content changed replaces its document.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ingest.fetch import Fetched, Fetcher, FetchError
from ingest.load import RawRecord, decode_as
from rag.errors import IngestError
from rag.types import SkippedFile

URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_FEED_TYPES = ("rss", "atom", "/xml", "+xml")
_FEED_START = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(rss|feed|rdf:RDF)\b", re.S)


def is_url(given: str) -> bool:
    return bool(URL_PATTERN.match(given))


@dataclass(frozen=True)
class WebSource:
    """A feed or page URL, as given. It has a catalog record like a file (keyed by the URL); size and mtime are 0."""

    path: str
    format: str = "url"
    mtime_ns: int = 0
    size: int = 0

    @property
    def key(self) -> str:
        return self.path


@dataclass(frozen=True)
class Kept:
    """A feed entry unchanged since the last poll: its document stays, its page is not fetched."""

    doc_id: str


@dataclass(frozen=True)
class Validator:
    """What the source's record keeps for the next, conditional request (JSON)."""

    value: str


@dataclass
class _State:
    etag: str = ""
    last_modified: str = ""
    entries: dict[str, str] = field(default_factory=dict)  # entry link -> fingerprint

    @classmethod
    def parse(cls, text: str) -> _State:
        try:
            data = json.loads(text) if text else {}
        except json.JSONDecodeError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        entries = data.get("entries")
        return cls(str(data.get("etag") or ""), str(data.get("last_modified") or ""),
                   dict(entries) if isinstance(entries, dict) else {})

    def dump(self) -> str:
        return json.dumps({"etag": self.etag, "last_modified": self.last_modified, "entries": self.entries},
                          sort_keys=True)


def read_url(source: WebSource, validator: str, known: set[str], fetcher: Fetcher
             ) -> Iterator[RawRecord | SkippedFile | Kept | Validator]:
    """The records a URL holds now. `validator` and `known` (the doc ids its record holds) are from the last
    ingest. A FetchError for the URL itself raises (the whole source fails); an entry that fails is a
    SkippedFile and is tried again next time."""
    state = _State.parse(validator)
    fetched = fetcher.get(source.path, state.etag, state.last_modified)
    if fetched.unchanged:
        for doc_id in sorted(known):
            yield Kept(doc_id)
        yield Validator(validator)
        return
    feed = parse_feed(fetched)
    if feed is None:
        yield RawRecord(source.path, source.path, "html", page_text(fetched), {"url": fetched.url})
        yield Validator(_State(fetched.etag, fetched.last_modified).dump())
        return
    entries: dict[str, str] = {}
    fetched_pages = 0
    waiting = 0
    for entry in feed["entries"]:
        link = entry["link"]
        fingerprint = entry["fingerprint"]
        if state.entries.get(link) == fingerprint and link in known:
            entries[link] = fingerprint
            yield Kept(link)
            continue
        if fetched_pages >= fetcher.policy.max_entries:  # not recorded: the next poll reads it as new
            waiting += 1
            continue
        fetched_pages += 1
        try:
            page = fetcher.get(link)
            text = page_text(page)
        except IngestError as exc:
            yield SkippedFile(link, f"entry of {source.path}: {exc}")
            continue
        entries[link] = fingerprint
        meta = {"url": page.url or link, "title": entry["title"], "published": entry["published"],
                "authors": entry["authors"], "source": feed["title"]}
        yield RawRecord(link, link, "html", text, meta)
    if waiting:
        yield SkippedFile(source.path, f"{waiting:,} more new entries than the {fetcher.policy.max_entries:,} read "
                                       "in one poll (RAG_FETCH_MAX_ENTRIES): they are read at the next")
    # Entries the feed no longer lists keep their documents (feeds show only the latest) and their fingerprints.
    kept = {k: v for k, v in state.entries.items() if k not in entries and k in known}
    # With entries left waiting, the next request may not be answered "304 unchanged": no validators kept.
    yield Validator(_State("" if waiting else fetched.etag, "" if waiting else fetched.last_modified,
                           {**kept, **entries}).dump())


def parse_feed(fetched: Fetched) -> dict[str, Any] | None:
    """The feed's title and entries (link, title, published, authors, fingerprint), or None if the response is
    not a feed (a page). A response that claims to be a feed and cannot be read raises FetchError."""
    content_type = fetched.content_type.split(";")[0].strip().lower()
    if "html" in content_type or not (any(t in content_type for t in _FEED_TYPES) or
                                       _FEED_START.match(fetched.content[:4096])):
        return None
    import feedparser

    parsed = feedparser.parse(fetched.content, response_headers={"content-location": fetched.url})
    if not parsed.get("version") and not parsed.entries:
        if content_type.endswith("xml") and not _FEED_START.match(fetched.content[:4096]):
            return None  # XML, but no feed: read it as a page
        raise FetchError(f"not a readable RSS or Atom feed ({parsed.get('bozo_exception') or 'no entries'})")
    entries = []
    seen = set()
    for entry in parsed.entries:
        link = str(entry.get("link") or "").strip()
        if not link or link in seen:
            continue
        seen.add(link)
        published = _field(entry, "published") or _field(entry, "updated")
        author = _person(_field(entry, "author"))
        authors = (author,) if author else ()
        title = str(entry.get("title") or "")
        stamp = json.dumps([link, published, _field(entry, "updated"), title, _field(entry, "id")])
        entries.append({"link": link, "title": title, "published": published, "authors": authors,
                        "fingerprint": hashlib.sha256(stamp.encode()).hexdigest()[:16]})
    return {"title": str(parsed.feed.get("title") or ""), "entries": entries}


def _person(text: str) -> str:
    """An RSS author as a name: "desk@paper.com (Kari Nordmann)" -> "Kari Nordmann"; a bare address -> ""."""
    text = text.strip()
    named = re.fullmatch(r"\S+@\S+\s*\((.+)\)", text)
    if named:
        return named.group(1).strip()
    return "" if re.fullmatch(r"\S+@\S+", text) else text


def _field(entry: dict[str, Any], key: str) -> str:
    """An entry's own field (feedparser maps a missing `updated` to `published`, with a warning)."""
    return str(dict.get(entry, key) or "")


def page_text(fetched: Fetched) -> str:
    """A page's HTML as text, in the charset its Content-Type names (else detected)."""
    content_type = fetched.content_type.lower()
    if content_type and not any(t in content_type for t in ("html", "xml", "text/plain")):
        raise FetchError(f"not a web page (Content-Type {fetched.content_type.split(';')[0]})")
    return decode_as(fetched.content, content_type)
