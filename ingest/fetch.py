"""Polite HTTP fetching for feeds and pages: http(s) only, public addresses only (unless allowed), robots.txt
obeyed, a delay between requests to one host, timeouts, a size limit, and conditional requests.

One `Fetcher` per ingest run; its robots.txt rules and per-host clocks live as long as it does.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import urllib.robotparser
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit

import httpx

from rag.errors import IngestError

USER_AGENT = "news-rag/0.1 (question answering over news; respects robots.txt)"
ROBOTS_AGENT = "news-rag"  # the product token robots.txt rules are matched against


class FetchError(IngestError):
    """A URL that could not or may not be fetched; the message says why."""


@dataclass(frozen=True)
class FetchPolicy:
    user_agent: str = USER_AGENT
    delay_s: float = 1.0  # between two requests to the same host (robots.txt's Crawl-delay if longer, up to 30 s)
    timeout_s: float = 20.0  # connect, and each read; a whole response must also arrive within 3x this
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False  # loopback, private, link-local addresses: refused unless this is set


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int  # 200, or 304 when the validators still hold
    content: bytes
    content_type: str
    etag: str
    last_modified: str

    @property
    def unchanged(self) -> bool:
        return self.status == 304


MAX_CRAWL_DELAY_S = 30.0
ROBOTS_TTL_S = 3600.0
_ROBOTS_CACHE: dict[str, tuple[_Robots, float]] = {}
_ROBOTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Robots:
    """One host's robots.txt: everything allowed or not, or the parsed rules."""

    allowed: bool
    parser: urllib.robotparser.RobotFileParser | None = None

    def can_fetch(self, url: str) -> bool:
        return self.parser.can_fetch(ROBOTS_AGENT, url) if self.parser is not None else self.allowed

    def crawl_delay(self) -> float:
        delay = self.parser.crawl_delay(ROBOTS_AGENT) if self.parser is not None else None
        return float(delay or 0.0)


class Fetcher:
    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.policy = policy or FetchPolicy()
        self._client = httpx.Client(
            headers={"User-Agent": self.policy.user_agent},
            timeout=httpx.Timeout(self.policy.timeout_s),
            follow_redirects=False,  # each hop is checked (scheme, address, robots.txt) before it is requested
            trust_env=False,  # no proxy from the environment: the address checked is the address reached
        )
        self._robots: dict[str, _Robots] = {}
        self._last_request: dict[str, float] = {}
        self._lock = threading.Lock()
        self.requests = 0  # made, robots.txt included (for reports and tests)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, etag: str = "", last_modified: str = "") -> Fetched:
        """The response to GET url, following redirects; with validators, a 304 is `unchanged`. Raises
        FetchError with the reason for anything else."""
        for _ in range(self.policy.max_redirects + 1):
            self.check_allowed(url)
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            _, location, response = self._request(url, headers)
            if location is None:
                assert response is not None
                return response
            url = location
        raise FetchError(f"more than {self.policy.max_redirects} redirects")

    def check_allowed(self, url: str) -> None:
        """Refuse a URL that is not http(s), reaches a private address (unless allowed), or robots.txt disallows."""
        parts = self._check_address(url)
        if not self._robots_for(parts.scheme, parts.netloc).can_fetch(url):
            raise FetchError("robots.txt disallows this URL")

    def _check_address(self, url: str) -> SplitResult:
        """The URL's parts, if it is http(s) with a host that is public (or private addresses are allowed)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"only http and https URLs are fetched, not {parts.scheme or 'a bare path'!r}")
        if not parts.hostname:
            raise FetchError("the URL has no host")
        if not self.policy.allow_private:
            _refuse_private(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        return parts

    # -- internals -----------------------------------------------------------------------------------
    def _robots_for(self, scheme: str, netloc: str) -> _Robots:
        """The host's robots.txt rules, fetched once an hour at most (kept for the process, so the polls of `rag
        watch` do not ask again). RFC 9309: a 4xx means no rules; a 5xx or no answer means everything is
        disallowed (until it is asked again)."""
        key = f"{scheme}://{netloc}"
        if key in self._robots:
            return self._robots[key]
        with _ROBOTS_LOCK:
            cached = _ROBOTS_CACHE.get(key)
        if cached is not None and time.monotonic() - cached[1] < ROBOTS_TTL_S:
            self._robots[key] = cached[0]
            return cached[0]
        try:
            url = key + "/robots.txt"
            for _ in range(self.policy.max_redirects + 1):  # RFC 9309: follow at least five redirects
                status, location, response = self._request(url, {}, max_bytes=512 * 1024, errors_as_status=True)
                if location is None:
                    break
                self._check_address(location)
                url = location
            else:  # too many redirects: unavailable, as a 4xx is
                status, response = 404, None
        except FetchError as exc:
            self._robots[key] = _Robots(allowed=False)
            raise FetchError(f"robots.txt could not be read ({exc}), so the host is not crawled") from exc
        if status >= 500:
            rules = _Robots(allowed=False)
        elif response is None or status >= 400:
            rules = _Robots(allowed=True)
        else:
            parser = urllib.robotparser.RobotFileParser()
            parser.parse(response.content.decode("utf-8", "replace").splitlines())
            rules = _Robots(allowed=True, parser=parser)
        self._robots[key] = rules
        with _ROBOTS_LOCK:
            _ROBOTS_CACHE[key] = (rules, time.monotonic())
        return rules

    def _wait_turn(self, host: str) -> None:
        delay = self.policy.delay_s
        for key, rules in self._robots.items():
            if urlsplit(key).netloc == host:
                delay = max(delay, min(rules.crawl_delay(), MAX_CRAWL_DELAY_S))
        with self._lock:
            wait = self._last_request.get(host, -1e9) + delay - time.monotonic()
            self._last_request[host] = time.monotonic() + max(wait, 0.0)
        if wait > 0:
            time.sleep(wait)

    def _request(self, url: str, headers: dict[str, str], max_bytes: int | None = None,
                 errors_as_status: bool = False) -> tuple[int, str | None, Fetched | None]:
        """(status, redirect target or None, the response when it is not a redirect). An HTTP error raises
        FetchError, or with `errors_as_status` (robots.txt) comes back as its status without a response."""
        limit = max_bytes or self.policy.max_bytes
        host = urlsplit(url).netloc
        self._wait_turn(host)
        deadline = time.monotonic() + 3 * self.policy.timeout_s
        self.requests += 1
        try:
            return self._read_response(url, headers, limit, deadline, errors_as_status)
        finally:  # the delay counts from the end of this response, so requests arrive at least `delay` apart
            with self._lock:
                self._last_request[host] = max(self._last_request.get(host, -1e9), time.monotonic())

    def _read_response(self, url: str, headers: dict[str, str], limit: int, deadline: float,
                       errors_as_status: bool) -> tuple[int, str | None, Fetched | None]:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(f"HTTP {status} without a Location")
                    return status, urljoin(url, location), None
                if status == 304:
                    return status, None, Fetched(url, 304, b"", "", response.headers.get("etag", ""),
                                                 response.headers.get("last-modified", ""))
                if status >= 400:
                    if errors_as_status:
                        return status, None, None
                    raise FetchError(f"HTTP {status} {response.reason_phrase}".rstrip())
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise FetchError(f"the response is {int(declared):,} bytes, over the {limit:,}-byte limit")
                body = bytearray()
                for piece in response.iter_bytes():
                    body += piece
                    if len(body) > limit:
                        raise FetchError(f"the response is over the {limit:,}-byte limit")
                    if time.monotonic() > deadline:
                        raise FetchError(f"the response took over {3 * self.policy.timeout_s:.0f} s")
                return status, None, Fetched(str(response.url), status, bytes(body),
                                             response.headers.get("content-type", ""),
                                             response.headers.get("etag", ""),
                                             response.headers.get("last-modified", ""))
        except httpx.TimeoutException as exc:
            raise FetchError(f"timed out after {self.policy.timeout_s:g} s ({exc.__class__.__name__})") from exc
        except httpx.HTTPError as exc:  # connection refused, reset, bad response, too many bytes in a header
            raise FetchError(f"{exc.__class__.__name__}: {exc}") from exc


def _refuse_private(host: str, port: int) -> None:
    """FetchError if the host is, or resolves to, an address that is not public (loopback, private, link-local,
    reserved, multicast): a feed must not make us request the machine's own or its network's services."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"the host {host!r} could not be resolved: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise FetchError(f"{host} is a private or loopback address ({address}); "
                             "--allow-private fetches from such addresses")
