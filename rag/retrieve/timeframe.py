"""When a question is about: the period it points to, resolved against the date it is asked, and how far an
article's date falls outside that period (the recency prior retrieval and sentence ranking use).

"this week", "last week", "yesterday", "on Tuesday", "this month", "this year" are windows relative to the
question's date (`as_of`, else today); "recently", "latest", "the new …" point at the last weeks; "in 2019",
"in June 2021", "on March 5" name a period. A question with none of these is still a news question: it leans
toward the last month before its date, more weakly.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import date, timedelta

_MONTHS = ("january february march april may june july august september october november december").split()
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_MONTH_RE = "|".join(_MONTHS)
# Explicit windows, relative to the question's date: (pattern, days back to the start, days back to the end).
_RELATIVE: tuple[tuple[re.Pattern[str], int, int], ...] = tuple(
    (re.compile(pattern, re.I), start, end) for pattern, start, end in (
        (r"\btoday\b|\btonight\b|\bthis morning\b", 0, 0),
        (r"\byesterday\b|\blast night\b", 1, 1),
        (r"\bthis week(?:end)?\b|\bthe past week\b|\bthis past week(?:end)?\b|\bearlier this week\b|"
         r"\bthe last (?:few|several) days\b|\bthe past (?:few|several) days\b", 7, 0),
        (r"\blast week(?:end)?\b", 14, 5),
        (r"\bthis month\b|\bthe past month\b|\bearlier this month\b", 31, 0),
    ))
_LAST_MONTH = re.compile(r"\blast month\b", re.I)
_THIS_YEAR = re.compile(r"\bthis year\b|\bso far this year\b", re.I)
_LAST_YEAR = re.compile(r"\blast year\b", re.I)
_WEEKDAY = re.compile(r"\b(?:on|last|this past)\s+(" + "|".join(_WEEKDAYS) + r")\b", re.I)
# Vague pointers at the last weeks.
# "new" only in lower case: "New York" is a place.
_RECENT = re.compile(r"(?i:\b(?:recent|recently|latest|newest|newly|just|current|currently|now|upcoming|soon|"
                     r"this season|so far)\b)|\bnew\b")
# "since 1984" and "from 2019" are not periods to search ("the first eruption since 1984" is this week's news).
_YEAR = re.compile(r"\b(?:in|of|during|for)\s+(?:(" + _MONTH_RE + r")\s+)?((?:19|20)\d{2})\b", re.I)
_MONTH_DAY = re.compile(r"\bon\s+(" + _MONTH_RE + r")\s+(\d{1,2})(?:st|nd|rd|th)?\b(?!,?\s*(?:19|20)\d{2})", re.I)

RECENT_DAYS = 21  # "recently", "the new …": the three weeks before the question's date
PLAIN_DAYS = 31  # a question with no time words: the month before its date
# Distances beyond a window are measured on a log scale in weeks, and saturate at five years.
_SATURATE_DAYS = 1826
# How much a question with no time words leans toward the month before its date, as a share of the prior a named
# period gets: 0, neutral (`python -m evals.tune_time`: on archive-style questions, leaning cost answers).
PLAIN_LEAN = 0.0


@dataclass(frozen=True)
class TimeFrame:
    """The period a question points to. `kind`: "relative" (an explicit window relative to `as_of`), "recent"
    (a vague pointer at the last weeks), "absolute" (a named year, month or day), or "" (no time words: the
    month before `as_of`, weakly). `phrase` is the words that set it."""

    as_of: date
    start: date
    end: date
    kind: str = ""
    phrase: str = ""

    @property
    def leans(self) -> bool:
        """Whether the frame weighs articles' dates at all: a question's own time words, or PLAIN_LEAN."""
        return bool(self.kind) or PLAIN_LEAN > 0

    def describe(self) -> str:
        """The period in words, for the answer ("" for a question with no time words).

        >>> time_frame("Who won the election this week?", date(2022, 6, 17)).describe()
        'this week: articles of 2022-06-10 to 2022-06-17'
        """
        if not self.kind:
            return ""
        span = self.start.isoformat() if self.start == self.end else f"{self.start} to {self.end}"
        return f"{self.phrase}: articles of {span}"

    def days_outside(self, published: str) -> float | None:
        """Days between the article's date and the window (`days_outside`)."""
        return days_outside(published, self.start, self.end)

    def recency(self, published: str) -> float | None:
        """The prior of an article's date: 0 inside the window, down to -1 five years or more outside it (log
        scale in weeks: -0.12 a week, -0.3 a month, -0.71 a year away); None for an undated article.

        >>> f = time_frame("What happened this week?", date(2022, 6, 17))
        >>> [f.recency(d) for d in ("2022-06-15", "2022-06-03", "2021-06-01", "")]
        [0.0, -0.1245, -0.7179, None]
        """
        days = self.days_outside(published)
        if days is None:
            return None
        scale = 1.0 if self.kind else PLAIN_LEAN
        return round(-scale * min(1.0, math.log1p(days / 7) / math.log1p(_SATURATE_DAYS / 7)), 4) + 0.0  # no -0.0


def date_span(published: str) -> tuple[date, date] | None:
    """The first and last day an ISO day, month or year covers."""
    parts = published.split("-") if published else []
    try:
        if len(parts) >= 3:
            day = date(int(parts[0]), int(parts[1]), int(parts[2][:2]))
            return day, day
        if len(parts) == 2:
            return date(int(parts[0]), int(parts[1]), 1), _month_end(int(parts[0]), int(parts[1]))
        if len(parts) == 1:
            return date(int(parts[0]), 1, 1), date(int(parts[0]), 12, 31)
    except ValueError:
        return None
    return None


def days_outside(published: str, start: date, end: date) -> float | None:
    """Days between a date (a day, month or year: its whole span) and the window start..end; 0 when they
    overlap, None for no date.

    >>> [days_outside(d, date(2022, 6, 10), date(2022, 6, 17)) for d in ("2022-06-01", "2022-06", "2022-07-01", "")]
    [9.0, 0.0, 14.0, None]
    """
    span = date_span(published)
    if span is None:
        return None
    first, last = span
    if last < start:
        return float((start - last).days)
    if first > end:
        return float((first - end).days)
    return 0.0


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def time_frame(question: str, as_of: date) -> TimeFrame:
    """The period a question asked on `as_of` points to.

    >>> d = date(2022, 6, 17)  # a Friday
    >>> [(f.kind, str(f.start), str(f.end)) for f in (time_frame(q, d) for q in (
    ...     "What did the Fed announce last week?", "Who resigned on Tuesday?", "Who won the Oscar in 2019?",
    ...     "What is the latest on the strike?", "Who requested CSTO troops?", "What happened on March 5?"))]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('relative', '2022-06-03', '2022-06-12'), ('relative', '2022-06-14', '2022-06-14'),
     ('absolute', '2019-01-01', '2019-12-31'), ('recent', '2022-05-27', '2022-06-17'),
     ('', '2022-05-17', '2022-06-17'), ('absolute', '2022-03-05', '2022-03-05')]
    """
    for pattern, back_start, back_end in _RELATIVE:
        m = pattern.search(question)
        if m:
            return TimeFrame(as_of, as_of - timedelta(days=back_start), as_of - timedelta(days=back_end), "relative",
                             m.group(0).lower())
    m = _WEEKDAY.search(question)
    if m:  # the last such weekday on or before as_of ("on Friday" asked on a Friday: today)
        back = (as_of.weekday() - _WEEKDAYS.index(m.group(1).lower())) % 7
        day = as_of - timedelta(days=back)
        return TimeFrame(as_of, day, day, "relative", m.group(0).lower())
    m = _LAST_MONTH.search(question)
    if m:  # the calendar month before as_of's
        last = as_of.replace(day=1) - timedelta(days=1)
        return TimeFrame(as_of, last.replace(day=1), last, "relative", m.group(0).lower())
    m = _THIS_YEAR.search(question)
    if m:
        return TimeFrame(as_of, date(as_of.year, 1, 1), as_of, "relative", m.group(0).lower())
    m = _LAST_YEAR.search(question)
    if m:
        return TimeFrame(as_of, date(as_of.year - 1, 1, 1), date(as_of.year - 1, 12, 31), "relative",
                         m.group(0).lower())
    m = _YEAR.search(question)
    if m:
        year = int(m.group(2))
        if m.group(1):
            month = _MONTHS.index(m.group(1).lower()) + 1
            first = date(year, month, 1)
            last = _month_end(year, month)
        else:
            first, last = date(year, 1, 1), date(year, 12, 31)
        if first <= as_of:  # a year after the question's date is no period to search
            return TimeFrame(as_of, first, min(last, as_of), "absolute", m.group(0).lower())
    m = _MONTH_DAY.search(question)
    if m:
        month, day_of_month = _MONTHS.index(m.group(1).lower()) + 1, int(m.group(2))
        for year in (as_of.year, as_of.year - 1):  # the last such day on or before as_of
            try:
                named = date(year, month, day_of_month)
            except ValueError:  # "June 31", or February 29 outside a leap year
                continue
            if named <= as_of:
                return TimeFrame(as_of, named, named, "absolute", m.group(0).lower())
    m = _RECENT.search(question)
    if m:
        return TimeFrame(as_of, as_of - timedelta(days=RECENT_DAYS), as_of, "recent", m.group(0).lower())
    return TimeFrame(as_of, as_of - timedelta(days=PLAIN_DAYS), as_of)
