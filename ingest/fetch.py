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
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import httpcore
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
    timeout_s: float = 20.0  # connect, and each read; a whole response, headers included, within 3x this
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False  # loopback, private, link-local addresses: refused unless this is set
    max_entries: int = 100  # a feed's entries read in one poll (ingest/web.py); the rest wait for the next


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
    refusal: str = ""  # why nothing is fetched, when it is not robots.txt's rules that say so

    def can_fetch(self, url: str) -> bool:
        return self.parser.can_fetch(ROBOTS_AGENT, url) if self.parser is not None else self.allowed

    def crawl_delay(self) -> float:
        delay = self.parser.crawl_delay(ROBOTS_AGENT) if self.parser is not None else None
        return float(delay or 0.0)


class _Connections(httpcore.SyncBackend):
    """Each connection made to an address checked again as it is opened (a name may resolve elsewhere the second
    time), and the socket of each thread's request in flight kept, so that its deadline can cut it."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.sockets: dict[int, socket.socket] = {}
        self._lock = threading.Lock()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        address = host
        if not self.allow_private:
            try:
                address = _public_address(host, port)
            except FetchError as exc:
                raise httpcore.ConnectError(str(exc)) from exc
        stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
        with self._lock:
            self.sockets[threading.get_ident()] = stream.get_extra_info("socket")
        return stream

    def cut(self, thread: int) -> None:
        """End the thread's request in flight: its socket's next read returns at once."""
        with self._lock:
            sock = self.sockets.get(thread)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass

    def forget(self, thread: int) -> None:
        with self._lock:
            self.sockets.pop(thread, None)


class _Transport(httpx.HTTPTransport):
    """httpx's transport over `_Connections`, one connection a request (no keep-alive: each request's socket is
    its own, for its deadline). httpx has no parameter for a network backend: its pool is built again with one."""

    def __init__(self, connections: _Connections) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=False),
                                             max_keepalive_connections=0, network_backend=connections)


class Fetcher:
    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.policy = policy or FetchPolicy()
        self._connections = _Connections(self.policy.allow_private)
        self._client = httpx.Client(
            headers={"User-Agent": self.policy.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(self.policy.timeout_s),
            follow_redirects=False,  # each hop is checked (scheme, address, robots.txt) before it is requested
            trust_env=False,  # no proxy from the environment: the address checked is the address reached
            transport=_Transport(self._connections),
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
        rules = self._robots_for(parts.scheme, parts.netloc)
        if not rules.can_fetch(url):
            raise FetchError(rules.refusal or "robots.txt disallows this URL")

    def _check_address(self, url: str) -> SplitResult:
        """The URL's parts, if it is http(s) with a host that is public (or private addresses are allowed)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"only http and https URLs are fetched, not {parts.scheme or 'a bare path'!r}")
        if not parts.hostname:
            raise FetchError("the URL has no host")
        if parts.username is not None or parts.password is not None:
            raise FetchError("a URL with a user name or password is not fetched (it would be sent to the host's "
                             "robots.txt too, and kept in the article's id and citations)")
        if not self.policy.allow_private:
            _public_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
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
            rules = _Robots(allowed=False, refusal=f"robots.txt answered HTTP {status}, a server error, so the host is "
                                                   "not crawled until it answers (RFC 9309)")
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
        self.requests += 1
        thread = threading.get_ident()
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            self._connections.cut(thread)

        # The whole response, headers included: a server dripping its headers is cut at the deadline.
        deadline = threading.Timer(3 * self.policy.timeout_s, expire)
        deadline.daemon = True
        deadline.start()
        try:
            return self._read_response(url, headers, limit, errors_as_status)
        except (FetchError, httpx.HTTPError, OSError) as exc:
            if expired.is_set():
                raise FetchError(f"the response took over {3 * self.policy.timeout_s:.0f} s") from exc
            if isinstance(exc, FetchError):
                raise
            raise FetchError(f"{exc.__class__.__name__}: {exc}") from exc
        finally:  # the delay counts from the end of this response, so requests arrive at least `delay` apart
            deadline.cancel()
            self._connections.forget(thread)
            with self._lock:
                self._last_request[host] = max(self._last_request.get(host, -1e9), time.monotonic())

    def _read_response(self, url: str, headers: dict[str, str], limit: int, errors_as_status: bool
                       ) -> tuple[int, str | None, Fetched | None]:
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
                body = _read_body(response, limit)
                return status, None, Fetched(str(response.url), status, body,
                                             response.headers.get("content-type", ""),
                                             response.headers.get("etag", ""),
                                             response.headers.get("last-modified", ""))
        except httpx.TimeoutException as exc:
            raise FetchError(f"timed out after {self.policy.timeout_s:g} s ({exc.__class__.__name__})") from exc


def _read_body(response: httpx.Response, limit: int) -> bytes:
    """The body as sent, decoded here (gzip or deflate, one layer) so that neither what arrives nor what it
    unpacks to passes `limit` bytes: httpx would unpack a whole network read first."""
    codings = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > 1:
        raise FetchError(f"a response encoded {len(codings)} times over ({', '.join(codings)}) is not accepted")
    if codings and codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(f"the Content-Encoding {codings[0]!r} is not accepted (gzip and deflate are)")
    coding = codings[0] if codings else ""
    wbits = 16 + zlib.MAX_WBITS if coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    unpack: Any = zlib.decompressobj(wbits)
    body, arrived, done = bytearray(), 0, False
    for piece in response.iter_raw():
        arrived += len(piece)
        if arrived > limit:
            raise FetchError(f"the response is over the {limit:,}-byte limit")
        if not coding:
            body += piece
            continue
        data = piece
        while data and not done:
            try:
                body += unpack.decompress(data, limit + 1 - len(body))
            except zlib.error as exc:
                if coding == "deflate" and not body and arrived == len(piece) and wbits > 0:  # raw deflate
                    wbits = -zlib.MAX_WBITS
                    unpack = zlib.decompressobj(wbits)
                    continue
                raise FetchError(f"the response's {coding} body is damaged: {exc}") from exc
            if len(body) > limit:
                raise FetchError(f"the response unpacks to over the {limit:,}-byte limit")
            if not unpack.eof:
                data = unpack.unconsumed_tail
            elif unpack.unused_data[:2] == b"\x1f\x8b":  # another gzip member follows
                data, unpack = unpack.unused_data, zlib.decompressobj(wbits)
            else:  # the end; anything after it is not the page
                done = True
    if coding and arrived and not unpack.eof:
        raise FetchError(f"the response's {coding} body ends before its end: it was cut")
    return bytes(body)


# IPv6 ranges that carry an IPv4 address in their last 32 bits: IPv4-compatible (::a.b.c.d), NAT64 (RFC 6052,
# RFC 8215). 6to4 (2002::/16) carries it in bits 16-48, and IPv4-mapped (::ffff:a.b.c.d) has its own attribute.
_EMBEDDING_IPV4 = tuple(ipaddress.ip_network(n) for n in ("::/96", "64:ff9b::/96", "64:ff9b:1::/48"))


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is a public one, IPv4 addresses carried inside IPv6 ones judged as themselves.

    >>> [is_public(ipaddress.ip_address(a)) for a in ("93.184.216.34", "::127.0.0.1", "2002:7f00:1::", "::1")]
    [True, False, False, False]
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.sixtofour is not None:
            return is_public(address.sixtofour)
        if any(address in net for net in _EMBEDDING_IPV4) and int(address) & 0xFFFFFFFF:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def _public_address(host: str, port: int) -> str:
    """The first address the host resolves to, if every one is public (FetchError if any is not: loopback,
    private, link-local, reserved, multicast): a feed must not make us request the machine's own or its network's
    services."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"the host {host!r} could not be resolved: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if not is_public(address):
            raise FetchError(f"{host} is a private or loopback address ({address}); "
                             "--allow-private fetches from such addresses")
    if not addresses:
        raise FetchError(f"the host {host!r} resolves to no address")
    return str(addresses[0])
