"""The chat page's HTTP edges (ASGI middleware around Gradio's app): login attempts limited per client address,
and a page served on loopback without a login answers only requests naming a loopback host, so that a web page
elsewhere cannot reach it through a DNS name rebound to 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
LOGIN_PATHS = frozenset({"/login", "/login/"})


def host_name(header: str) -> str:
    """The name of a Host header, without its port.

    >>> [host_name(h) for h in ("localhost:7860", "[::1]:7860", "127.0.0.1", "evil.example:80")]
    ['localhost', '::1', '127.0.0.1', 'evil.example']
    """
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class FailedLogins:
    """Failed login attempts per client address within a sliding window."""

    def __init__(self, attempts: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.attempts, self.window_s, self.clock = attempts, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, client: str) -> float:
        """Seconds until `client` may try again (0: now)."""
        with self._lock:
            failures = self._recent(client)
            if len(failures) < self.attempts:
                return 0.0
            return max(0.0, failures[0] + self.window_s - self.clock())

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(self.clock())
            if len(self._failures) > 10_000:  # many addresses: forget those with nothing recent
                for other in [c for c in self._failures if not self._recent(c)]:
                    del self._failures[other]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= self.clock() - self.window_s:
            failures.popleft()
        while len(failures) > self.attempts:
            failures.popleft()
        return failures


class PageGuard:
    """ASGI middleware: `loopback_only` refuses a request whose Host is not a loopback name (421); POST /login is
    refused (429, with Retry-After) for a client address with `logins.attempts` failures in the window."""

    def __init__(self, app: ASGIApp, loopback_only: bool = False, logins: FailedLogins | None = None) -> None:
        self.app, self.loopback_only = app, loopback_only
        self.logins = logins or FailedLogins()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.loopback_only and host_name(headers.get("host", "")) not in LOOPBACK_NAMES:
            await _refuse(scope, receive, send, 421, "this page answers only on 127.0.0.1 and localhost", {})
            return
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.logins.wait_s(client)
        if wait > 0:
            await _refuse(scope, receive, send, 429, f"too many failed logins: try again in {wait:.0f} s",
                          {"retry-after": str(max(1, round(wait)))})
            return
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        await self.app(scope, receive, watch)
        if status and status[0] == 200:
            self.logins.succeeded(client)
        elif status and 400 <= status[0] < 500:
            self.logins.failed(client)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, reason: str,
                  headers: dict[str, str]) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect, answered with a close: the handshake is refused
        await send({"type": "websocket.close", "code": 1008, "reason": reason})
        return
    body = json.dumps({"detail": reason}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *((k.encode(), v.encode()) for k, v in headers.items())]})
    await send({"type": "http.response.body", "body": body})
