"""Scale: ingest, query latency and peak memory at about 1k, 10k and 100k chunks.

    python -m bench.scale [--sizes 1000 10000 100000] [--questions 200] [--keep DIR] [--data DIR]

Corpora come from bench/corpus.py `scaled` (news + SQuAD articles, repeated with changed ids and rotated
paragraphs past the first copy). Questions are RealTime QA's and SQuAD's, mixed. Each step runs in its own
process: ingest (peak RSS of ingesting), then the warm latency of retrieval + extractive answer (peak RSS of
serving). No baseline here: bench.ingest and bench.query compare against LlamaIndex at 10k.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench import corpus
from bench.worker import percentile, spawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build the indexes here and keep them (default: a temp dir)")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="rag-scale-"))
    try:
        half = args.questions // 2
        questions = (corpus.questions("realtimeqa", work / "q", args.data, half)
                     + corpus.questions("squad2", work / "q", args.data, args.questions - half))
        rows = ["| chunks | documents | ingest s | chunks/s | peak RSS ingest, MB | query p50 ms | query p95 ms | "
                "peak RSS serving, MB |", "|---|---|---|---|---|---|---|---|"]
        for size in args.sizes:
            source = corpus.scaled(work / f"corpus-{size}", size, args.data)
            index = work / f"index-{size}"
            built = spawn("ingest", index, [str(source)])
            served = spawn("queries", index, questions)
            lat = served["latencies_ms"]
            rows.append(f"| {built['chunks']} | {built['documents']} | {built['seconds']:.0f} | "
                        f"{built['chunks'] / built['seconds']:.0f} | {built['peak_rss_mb']:.0f} | "
                        f"{percentile(lat, 0.5):.0f} | {percentile(lat, 0.95):.0f} | {served['peak_rss_mb']:.0f} |")
            print(rows[-1], flush=True)
        print("\n".join(rows))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
