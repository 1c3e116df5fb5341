"""Query latency, cold start and serving memory: the project against LlamaIndex's default pipeline.

    python -m bench.query [--corpus news|squad] [--questions 200] [--data DIR]

Both indexes are built first (untimed). Then, each in a fresh process: the time from starting Python to the
first answer (the project: retrieval + extractive answer; the baseline: `as_retriever().retrieve`, no answer),
and the latency of each question once warm, with the process's peak RSS.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import corpus
from bench.worker import percentile, spawn, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("news", "squad"), default="news")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    name = {"news": "realtimeqa", "squad": "squad2"}[args.corpus]
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        files = [str(f) for f in getattr(corpus, args.corpus)(work / "corpus", args.data)]
        questions = corpus.questions(name, work / "q", args.data, args.questions)
        built = spawn("ingest", work / "project", files)
        spawn("baseline-ingest", work / "baseline", files)
        first = spawn("first-answer", work / "project", questions[0])
        base_first = spawn("baseline-first-answer", work / "baseline", questions[0])
        ours = spawn("queries", work / "project", questions)
        base = spawn("baseline-queries", work / "baseline", questions)
    lat, base_lat = ours["latencies_ms"], base["latencies_ms"]
    print(f"corpus {args.corpus}: {built['chunks']} chunks (project), {len(questions)} questions")
    print(table([
        ("cold start to first answer, s (process wall)", first["wall_seconds"], base_first["wall_seconds"]),
        ("peak RSS at first answer, MB", first["peak_rss_mb"], base_first["peak_rss_mb"]),
        ("query p50, ms (project: retrieval + answer)", percentile(lat, 0.5), percentile(base_lat, 0.5)),
        ("query p95, ms", percentile(lat, 0.95), percentile(base_lat, 0.95)),
        (f"peak RSS serving {len(questions)} questions, MB", ours["peak_rss_mb"], base["peak_rss_mb"]),
    ]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
