"""The tests' own web site on loopback: routes -> (status, headers, body), a hanging page, a 30 MB page, and
builders for pages, RSS and Atom feeds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def page(body: str, title: str = "", date: str = "", extra: str = "") -> bytes:
    head = (f"<title>{title}</title>" if title else "") + (
        f'<meta property="article:published_time" content="{date}">' if date else "")
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{head}</head><body>"
            f"<article>{paragraphs}</article>{extra}</body></html>").encode()


COOKIE_BANNER = ('<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. '
                 '<button>Accept all cookies</button></div>')
COMMENTS = ('<section id="comments" class="comments"><h3>Comments</h3><div class="comment"><p>Reader42: I saw the '
            'trawlers myself, an incredible sight from the hill above the harbour.</p></div></section>')


def rss(items: list[tuple[str, str, str]], title: str = "Harbour Herald") -> bytes:
    """items: (link path, title, RFC 822 date)."""
    entries = "".join(
        f"<item><title>{t}</title><link>{{base}}{link}</link><guid>{link}</guid><pubDate>{d}</pubDate>"
        f"<author>desk@herald.example (Kari Nordmann)</author><dc:creator>Kari Nordmann</dc:creator></item>"
        for link, t, d in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>{title}</title><link>{{base}}/</link><description>News</description>{entries}"
            f"</channel></rss>").encode()


def atom(items: list[tuple[str, str, str]]) -> bytes:
    entries = "".join(
        f'<entry><title>{t}</title><link href="{{base}}{link}"/><id>tag:fjord.example,2022:{link}</id>'
        f"<updated>{d}</updated><author><name>Ola Fjord</name></author></entry>" for link, t, d in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Fjord Post</title><id>tag:fjord.example,2022:feed</id><updated>2022-07-02T10:00:00Z</updated>"
            f"{entries}</feed>").encode()


class Site:
    """The test's web site: routes -> (status, headers, body); every request is logged."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        # path -> a function that writes the whole response itself on the handler's socket (`wfile`)
        self.custom: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.log: list[tuple[str, dict[str, str]]] = []
        self.times: list[float] = []  # when each request arrived (time.monotonic)
        self.hang = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                site.log.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                site.times.append(time.monotonic())
                if self.path in site.custom:
                    try:
                        site.custom[self.path](self)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if self.path == "/hang":
                    site.hang.wait(10)
                    return
                if self.path == "/huge":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()  # no Content-Length: the limit must hold while streaming
                    chunk = b"<p>" + b"filler text " * 8000 + b"</p>"
                    for _ in range(30 * 2**20 // len(chunk) + 1):
                        try:
                            self.wfile.write(chunk)
                        except (BrokenPipeError, ConnectionResetError):
                            return
                    return
                status, headers, body = site.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"no"))
                etag = headers.get("ETag")
                if etag and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200,
            **headers: str) -> None:
        self.routes[path] = (status, {"Content-Type": content_type, **headers},
                             body.replace(b"{base}", self.base.encode()))

    def requested(self, path: str) -> int:
        return sum(1 for p, _ in self.log if p == path)

    def close(self) -> None:
        self.hang.set()
        self.server.shutdown()
        self.server.server_close()
