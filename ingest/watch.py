"""`rag watch`: re-read feeds on a schedule and ingest what is new or changed.

Each poll is one ingest run over the URLs (ingest/web.py): an unchanged feed costs one conditional request, a
changed one the pages of its new or changed entries. The URL list is read again before every poll, so a file
of feeds can be edited while it runs. A stop request (Ctrl-C, SIGTERM, or `stop` set by the page) ends the
current poll after the feed being read, with everything read so far committed; a kill at any moment leaves an
index that the next run completes (ingest/pipeline.py, crash safety).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ingest.web import is_url
from rag.errors import ConfigError, RagError
from rag.types import IngestReport

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """'15m', '30s', '2h', '1d' or plain seconds -> seconds (at least 1)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if not match:
        raise ConfigError(f"--every {text!r}: give a number with s, m, h or d (e.g. 15m)")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 1:
        raise ConfigError(f"--every {text!r}: at least 1 second")
    return seconds


def read_url_list(given: Iterable[str]) -> list[str]:
    """URLs given directly, and those listed in files (one per line; blank lines and # comments ignored)."""
    urls: list[str] = []
    for item in given:
        if is_url(item):
            urls.append(item)
            continue
        try:
            lines = Path(item).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"the URL list {item} cannot be read: {exc}") from exc
        urls += urls_in(lines, item)
    return list(dict.fromkeys(urls))


def urls_in(lines: Iterable[str], where: str = "line") -> list[str]:
    """The URLs of a list's lines, each once: one per line; blank lines and # comments ignored, anything else
    refused."""
    urls = []
    for number, line in enumerate(lines, start=1):
        line = re.split(r"\s+#", line.strip(), maxsplit=1)[0]  # "# a comment", "URL  # a note"
        if not line or line.startswith("#"):
            continue
        if not is_url(line):
            raise ConfigError(f"{where}:{number}: not a URL: {line!r}")
        urls.append(line)
    return list(dict.fromkeys(urls))


def watch(ingest: Callable[[list[str], threading.Event], IngestReport], lists: Sequence[str], every_s: float,
          stop: threading.Event, on_poll: Callable[[int, IngestReport], Any], polls: int = 0) -> int:
    """Poll until `stop` is set (or `polls` polls are done, when above 0); returns the number of polls made.
    `on_poll(n, report)` after each."""
    done = 0
    while not stop.is_set():
        started = time.monotonic()
        report = ingest(read_url_list(lists), stop)
        done += 1
        on_poll(done, report)
        if polls and done >= polls:
            break
        stop.wait(max(0.0, started + every_s - time.monotonic()))
    return done


class Watcher:
    """`watch` on a background thread (the page's Corpus tab): start, stop, and the last poll's outcome."""

    def __init__(self, ingest: Callable[[list[str], threading.Event], IngestReport]) -> None:
        self._ingest = ingest
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.urls: list[str] = []
        self.every_s = 0.0
        self.polls = 0
        self.last: IngestReport | None = None
        self.last_at = 0.0  # time.time() of the last poll's end
        self.error = ""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, urls: list[str], every_s: float) -> None:
        """Watch these URLs (replacing what was watched) every `every_s` seconds, the first poll now."""
        self.stop()
        with self._lock:
            self.urls, self.every_s, self.polls, self.error = list(urls), every_s, 0, ""
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), daemon=True, name="feed-watch")
            self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ask the watch to stop after the feed being read, and wait for it."""
        thread = self._thread
        self._stop.set()
        if thread is not None:
            thread.join(timeout_s)

    def _run(self, stop: threading.Event) -> None:
        def on_poll(n: int, report: IngestReport) -> None:
            self.polls, self.last, self.last_at, self.error = n, report, time.time(), ""

        while not stop.is_set():
            try:
                watch(self._ingest, self.urls, self.every_s, stop, on_poll)
            except RagError as exc:  # the index is locked by another ingest, the disk is full: try again later
                self.error = str(exc)
                stop.wait(self.every_s)
