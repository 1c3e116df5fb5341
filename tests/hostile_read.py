"""Read one file or URL the way ingest does, in a process of its own, and report what came of it and the peak
memory it took: `python -m tests.hostile_read PATH_OR_URL` prints JSON (records, skipped, error, peak_rss_mb).
tests/test_hostile_sources.py runs it under a memory ceiling (tests/bounded.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from bench.worker import peak_rss_mb
    from ingest.fetch import Fetcher, FetchError, FetchPolicy
    from ingest.load import discover, read_records
    from rag.errors import IngestError
    from rag.types import SkippedFile

    target = argv[0]
    out: dict[str, object] = {"records": 0, "skipped": [], "error": ""}
    try:
        if target.startswith("http"):
            with Fetcher(FetchPolicy(allow_private=True, delay_s=0.0, timeout_s=float(argv[1]) if len(argv) > 1
                                     else 5.0)) as fetcher:
                out["records"] = len(fetcher.get(target).content) and 1
        else:
            (source,), _ = discover([Path(target)])
            for item in read_records(source, 50 * 1024 * 1024):
                if isinstance(item, SkippedFile):
                    out["skipped"].append(item.reason)  # type: ignore[attr-defined]
                else:
                    out["records"] = int(out["records"]) + 1  # type: ignore[call-overload]
    except (IngestError, FetchError) as exc:
        out["error"] = str(exc)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
