"""Ingest speed: the project against LlamaIndex's default pipeline on the same corpus, in the same run.

    python -m bench.ingest [--corpus news|squad] [--data DIR] [--runs N]

Each pipeline ingests into a fresh index in its own process (model loaded before the clock starts); then the
project re-ingests the unchanged corpus. Chunk sizes differ (160 vs 1,024 tokens), so time per corpus is the
fair figure; chunks/s and MB/s are given too. With `--runs N` the two pipelines ingest N times each, taking
turns, and the table gives the median of each (peak RSS: the largest) and every run's ratio: a corpus as small
as the SQuAD articles (a few seconds) moves by a tenth from run to run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench import corpus
from bench.worker import spawn, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("news", "squad"), default="news")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=1, help="ingest runs of each pipeline, taking turns (median)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        files = [str(f) for f in getattr(corpus, args.corpus)(work / "corpus", args.data)]
        megabytes = sum(Path(f).stat().st_size for f in files) / 1e6
        runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for n in range(args.runs):
            ours = spawn("ingest", work / f"project-{n}", files)
            base = spawn("baseline-ingest", work / f"baseline-{n}", files)
            runs.append((ours, base))
        again = spawn("ingest", work / "project-0", files)
    ours, base = _median(r[0] for r in runs), _median(r[1] for r in runs)
    print(f"corpus {args.corpus}: {len(files)} file(s), {megabytes:.1f} MB; project embeds with "
          f"{ours['backend']}, the baseline with torch" + (f"; median of {args.runs} runs each" if args.runs > 1 else ""))
    print(table([
        ("ingest wall time, s (model loaded)", ours["seconds"], base["seconds"]),
        ("chunks", ours["chunks"], base["chunks"]),
        ("chunks/s", ours["chunks"] / ours["seconds"], base["chunks"] / base["seconds"]),
        ("KB/s of corpus", 1000 * megabytes / ours["seconds"], 1000 * megabytes / base["seconds"]),
        ("peak RSS, MB", ours["peak_rss_mb"], base["peak_rss_mb"]),
        ("re-ingest unchanged, s", again["seconds"], None),
    ]))
    if args.runs > 1:
        print("each run's ingest time, project / baseline (ratio): " + ", ".join(
            f"{o['seconds']:.1f} / {b['seconds']:.1f} ({o['seconds'] / b['seconds']:.2f})" for o, b in runs))
    return 0


def _median(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One result of several runs: the median ingest time, the largest peak RSS, the rest of the first run."""
    runs = list(results)
    return {**runs[0], "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


if __name__ == "__main__":
    raise SystemExit(main())
