"""Ingest speed: the project against LlamaIndex's default pipeline on the same corpus, in the same run.

    python -m bench.ingest [--corpus news|squad] [--data DIR]

Each pipeline ingests into a fresh index in its own process (model loaded before the clock starts); then the
project re-ingests the unchanged corpus. Chunk sizes differ (160 vs 1,024 tokens), so time per corpus is the
fair figure; chunks/s and MB/s are given too.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import corpus
from bench.worker import spawn, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("news", "squad"), default="news")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        files = [str(f) for f in getattr(corpus, args.corpus)(work / "corpus", args.data)]
        megabytes = sum(Path(f).stat().st_size for f in files) / 1e6
        ours = spawn("ingest", work / "project", files)
        again = spawn("ingest", work / "project", files)
        base = spawn("baseline-ingest", work / "baseline", files)
    print(f"corpus {args.corpus}: {len(files)} file(s), {megabytes:.1f} MB; project embeds with "
          f"{ours['backend']}, the baseline with torch")
    print(table([
        ("ingest wall time, s (model loaded)", ours["seconds"], base["seconds"]),
        ("chunks", ours["chunks"], base["chunks"]),
        ("chunks/s", ours["chunks"] / ours["seconds"], base["chunks"] / base["seconds"]),
        ("KB/s of corpus", 1000 * megabytes / ours["seconds"], 1000 * megabytes / base["seconds"]),
        ("peak RSS, MB", ours["peak_rss_mb"], base["peak_rss_mb"]),
        ("re-ingest unchanged, s", again["seconds"], None),
    ]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
