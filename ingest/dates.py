"""An article's publication date: from its metadata, else its URL, else its page, else a dateline in its text.

Pure functions. Every date is an ISO day (YYYY-MM-DD), or a month or year when that is all a source says, and
is only trusted between 1900 and the day after ingest (a later one is a typo or a time-zone slip at best).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from rag.retrieve.timeframe import date_span

# Where `Article.published` came from; "" when the article has no trusted date.
SOURCES = ("metadata", "url", "page", "text", "")

_MONTHS = {m: i for i, names in enumerate(
    ("jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july", "aug august",
     "sep sept september", "oct october", "nov november", "dec december"), start=1) for m in names.split()}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+)?"
_NAMED_DATES = [  # "June 16, 2022", "Thu June 16 2022", "16 June 2022"
    re.compile(_WEEKDAY + _MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>(?:19|20)\d{2})\b", re.I),
    re.compile(_WEEKDAY + r"(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r",?\s+(?P<year>(?:19|20)\d{2})\b", re.I),
]
_NUMERIC_DATE = re.compile(r"(?P<year>(?:19|20)\d{2})[-/.](?P<month>\d{1,2})(?:[-/.](?P<day>\d{1,2}))?(?:$|[T\s])")
_US_DATE = re.compile(r"(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>(?:19|20)\d{2})$")
# /2022/11/15/, /2022-11-15/, /20221115/ and _2022-11-15 in a URL's path; a year and month alone: /2022/11/.
_URL_DATE = re.compile(r"[/_-](?P<year>(?:19|20)\d{2})([/_-]?)(?P<month>[01]\d)(?:\2(?P<day>[0-3]\d))?(?=[/_.-]|$)")
# A dateline: a short line near the top that is mostly a date, or a date after a line-opening Published/Updated/
# Posted ("This is an updated version of a story that ran on March 17" is not one).
_STAMP = re.compile(r"^\s*(?:published|updated|posted|last updated|first published)\b[:\s]", re.I | re.M)
_DATELINE_LINES = 6
_DATELINE_LINE_CHARS = 100
_STAMP_CHARS = 1500
_DATELINE_OTHER_WORDS = 4
_DATELINE_WORDS = frozenset("published updated posted last first on at by am pm a p m et est edt ct cst cdt pt pst "
                            "pdt gmt bst utc cet cest".split())


@dataclass(frozen=True)
class Dated:
    published: str  # ISO day, month or year; "" when no source gave a trusted date
    source: str  # one of SOURCES


def _iso(year: int, month: int | None = None, day: int | None = None) -> str:
    """The ISO text of a real calendar date ('' for 2022-02-30)."""
    try:
        if day:
            return date(year, month or 1, day).isoformat()
        if month:
            date(year, month, 1)
            return f"{year:04d}-{month:02d}"
    except ValueError:
        return ""
    return f"{year:04d}"


def parse_date(value: Any) -> str:
    """A metadata value as an ISO date ('' when it is not one): ISO dates and times, YYYY/MM/DD, month names,
    RFC 2822 (feeds), Unix seconds or milliseconds, and MM/DD/YYYY (DD/MM/YYYY only when the day is over 12).

    >>> [parse_date(v) for v in ("2022/06/16", "2022-06-16T10:00:00Z", "June 16, 2022", "Thu, 16 Jun 2022 10:00:00 GMT")]
    ['2022-06-16', '2022-06-16', '2022-06-16', '2022-06-16']
    >>> [parse_date(v) for v in ("2022", "2022-06", "16/06/2022", 1655373600, "soon", "2022-02-30")]
    ['2022', '2022-06', '2022-06-16', '2022-06-16', '', '']
    """
    if value is None or isinstance(value, bool) or value == "":
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value  # milliseconds since the epoch, as JavaScript writes
        try:
            return datetime.fromtimestamp(seconds, tz=UTC).date().isoformat()
        except (OverflowError, OSError, ValueError):
            return ""
    text = str(value).strip()
    if re.fullmatch(r"(19|20)\d{2}", text):
        return text
    m = _NUMERIC_DATE.match(text + " ")
    if m:
        return _iso(int(m["year"]), int(m["month"]), int(m["day"]) if m["day"] else None)
    m = _US_DATE.match(text)
    if m:
        month, day = int(m["month"]), int(m["day"])
        if month > 12 >= day:
            month, day = day, month
        return _iso(int(m["year"]), month, day)
    named = _named_date(text)
    if named:
        return named
    try:
        return parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError):
        return ""


def _named_date(text: str, alone: bool = False) -> str:
    """The first "June 16, 2022"-like date in text; with `alone`, only if the text holds little else (at most
    _DATELINE_OTHER_WORDS words besides a stamp, a time and a zone: "By Jane Doe, June 16, 2022, 10:05 AM ET")."""
    for pattern in _NAMED_DATES:
        m = pattern.search(text)
        if m and alone:
            rest = re.findall(r"[A-Za-z]+", text[: m.start()] + " " + text[m.end():])
            if len([w for w in rest if w.lower() not in _DATELINE_WORDS]) > _DATELINE_OTHER_WORDS:
                continue
        if m:
            return _iso(int(m["year"]), _MONTHS[m["month"].lower()], int(m["day"]))
    return ""


def date_in_url(url: str) -> str:
    """The date a news URL's path carries ('' when none).

    >>> [date_in_url(u) for u in ("https://www.cnn.com/2022/06/16/politics/x/index.html",
    ...                           "https://example.com/news/2022-11-15-storm", "https://e.com/a/20221115/b",
    ...                           "https://e.com/2022/11/slug", "https://e.com/item/123456789", "https://e.com/2022")]
    ['2022-06-16', '2022-11-15', '2022-11-15', '2022-11', '', '']
    """
    path = re.sub(r"^[a-z][a-z0-9+.-]*://[^/]*", "", url.strip(), flags=re.I).split("?")[0].split("#")[0]
    for m in _URL_DATE.finditer(path):
        found = _iso(int(m["year"]), int(m["month"]), int(m["day"]) if m["day"] else None)
        if found:
            return found
    return ""


def dateline_date(text: str) -> str:
    """The date of a dateline: a short line among the first few that holds a date, or a date right after
    "Published", "Updated" or "Posted" near the top. A date in the story's own sentences is not one.

    >>> dateline_date("Storm hits coast\\nJune 16, 2022\\nThe storm...")
    '2022-06-16'
    >>> dateline_date("Updated 10:05 AM ET, Thu June 16, 2022\\nThe storm...")
    '2022-06-16'
    >>> dateline_date("Tram line opens\\nPublished: 2025-02-18\\nThe first tram...")
    '2025-02-18'
    >>> dateline_date("On June 6, 1944, Allied troops landed in Normandy, the longest day of the war began.")
    ''
    """
    for line in text.split("\n")[:_DATELINE_LINES]:
        line = line.strip()
        if line and len(line) <= _DATELINE_LINE_CHARS:
            found = _named_date(line, alone=True) or (parse_date(line) if re.fullmatch(r"[\d/.\-T:Z ]+", line) else "")
            if found:
                return found
    head = text[:_STAMP_CHARS]
    for stamp in _STAMP.finditer(head):
        after = head[stamp.end(): stamp.end() + 60]
        numeric = _NUMERIC_DATE.match(after.strip() + " ") or _US_DATE.match((after.split() or [""])[0])
        found = _named_date(after) or (parse_date(numeric.group(0).strip()) if numeric else "")
        if found:
            return found
    return ""


def trusted(published: str, now: datetime | None = None) -> bool:
    """Whether a date can be believed: from 1900 to the day after `now` (ingest time).

    >>> [trusted(d, datetime(2022, 7, 1)) for d in ("2022-07-02", "2022-07-03", "1899-12-31", "2022", "")]
    [True, False, False, True, False]
    """
    span = date_span(published)
    if span is None:
        return False
    first = span[0]
    latest = ((now or datetime.now(UTC)) + timedelta(days=1)).date()
    return date(1900, 1, 1) <= first <= latest


def article_date(metadata: Any = "", url: str = "", page: Any = "", text: str = "", credit_year: str = "",
                 now: datetime | None = None) -> Dated:
    """The first trusted date of: the record's metadata, the URL, the page (HTML metadata, as trafilatura's
    htmldate finds it), a dateline in the text, the year of its credit line ("(C)UNIAN 2022").

    >>> article_date("not a date", "https://e.com/2022/06/16/x", "", "")
    Dated(published='2022-06-16', source='url')
    >>> article_date("2031-01-01", "", "", "Updated June 15, 2022\\nText", now=datetime(2022, 7, 1))
    Dated(published='2022-06-15', source='text')
    """
    for source, found in (("metadata", lambda: parse_date(metadata)), ("url", lambda: date_in_url(url)),
                          ("page", lambda: parse_date(page)), ("text", lambda: dateline_date(text)),
                          ("text", lambda: credit_year)):
        value = found()
        if trusted(value, now):
            return Dated(value, source)
    return Dated("", "")
