"""Sources: a local feed of N entries (pages/s through fetch, clean, chunk, embed, commit) and a large Parquet file
(peak memory of reading it, and of ingesting a slice of it).

    python -m bench.sources [--entries 500] [--parquet-mb 1000] [--ingest-mb 50] [--data DIR]

Pages are the news corpus's articles (bench/corpus.py `news`), served by a loopback HTTP server of this process
with no delay between requests (`RAG_FETCH_DELAY_S=0`; a real site gets the 1 s default). The Parquet file holds
those articles repeated with changed ids until it reaches the size. Each measured step is its own process.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import tempfile
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import corpus
from bench.worker import spawn


def _records(folder: Path, data: Path | None) -> list[dict[str, Any]]:
    records = []
    for path in corpus.news(folder, data):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return records


def serve_feed(records: list[dict[str, Any]], entries: int) -> tuple[ThreadingHTTPServer, str]:
    pages = {f"/a/{i}.html": records[i % len(records)] for i in range(entries)}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/robots.txt":
                body, kind = b"User-agent: *\nAllow: /\n", "text/plain"
            elif self.path == "/feed.xml":
                items = "".join(
                    f"<item><title>{html.escape(r.get('title') or path)}</title><link>{base}{path}</link>"
                    f"<pubDate>{formatdate(1656662400 + n * 600, usegmt=True)}</pubDate></item>"
                    for n, (path, r) in enumerate(pages.items()))
                body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title>{items}'
                        f"</channel></rss>").encode()
                kind = "application/rss+xml"
            elif self.path in pages:
                r = pages[self.path]
                paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in r["text"].split("\n\n") if p.strip())
                body = (f"<!DOCTYPE html><html><head><title>{html.escape(r.get('title') or '')}</title></head>"
                        f"<body><article>{paragraphs}</article></body></html>").encode()
                kind = "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, base


def write_parquet(records: list[dict[str, Any]], path: Path, megabytes: float) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(k, pa.string()) for k in ("id", "title", "text", "url", "published", "source")])
    written, rows, copy = 0, 0, 0
    with pq.ParquetWriter(path, schema) as writer:
        while written < megabytes * 2**20:
            batch = [{"id": f"{r.get('id') or r.get('url')}#{copy}", "title": r.get("title") or "",
                      "text": r["text"], "url": r.get("url") or "", "published": str(r.get("published") or ""),
                      "source": r.get("source") or ""} for r in records]
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            written += sum(len(r["text"]) for r in batch)
            rows += len(batch)
            copy += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sources", description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=500)
    parser.add_argument("--parquet-mb", type=float, default=1000, help="text in the large Parquet file, MB")
    parser.add_argument("--ingest-mb", type=float, default=50, help="text in the Parquet file ingested whole, MB")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ["RAG_FETCH_DELAY_S"] = "0"
    os.environ["RAG_FETCH_ALLOW_PRIVATE"] = "true"
    with tempfile.TemporaryDirectory(prefix="rag-bench-sources-") as tmp:
        work = Path(tmp)
        records = _records(work / "news", args.data)
        server, base = serve_feed(records, args.entries)
        try:
            feed = spawn("ingest", work / "feed-index", [f"{base}/feed.xml"])
            again = spawn("ingest", work / "feed-index", [f"{base}/feed.xml"])
        finally:
            server.shutdown()
        print(f"feed of {args.entries} entries on loopback: {feed['documents']} pages in {feed['seconds']:.1f} s "
              f"({feed['documents'] / feed['seconds']:.1f} pages/s, {feed['chunks']} chunks), peak RSS "
              f"{feed['peak_rss_mb']:.0f} MB; the unchanged feed polled again: {again['seconds']:.2f} s", flush=True)
        big = work / "big.parquet"
        rows = write_parquet(records, big, args.parquet_mb)
        read = spawn("read", work / "unused", [str(big)])
        print(f"Parquet, {big.stat().st_size / 2**20:.0f} MB on disk ({args.parquet_mb:.0f} MB of text, {rows} rows): "
              f"read in {read['seconds']:.0f} s, peak RSS {read['peak_rss_mb']:.0f} MB", flush=True)
        big.unlink()
        small = work / "slice.parquet"
        rows = write_parquet(records, small, args.ingest_mb)
        ingested = spawn("ingest", work / "parquet-index", [str(small)])
        print(f"Parquet, {small.stat().st_size / 2**20:.0f} MB ({rows} rows) ingested: {ingested['seconds']:.0f} s, "
              f"{ingested['chunks']} chunks, peak RSS {ingested['peak_rss_mb']:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
