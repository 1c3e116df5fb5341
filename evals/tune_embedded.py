"""How many of the pool's sentences the re-ranker embeds per question (`Settings.sentences_embedded`), on the tuning
splits only.

    python -m evals.tune_embedded [--values 0,24,16,12] [--index DIR] [--news-index DIR]

Each question is asked as a user would, with the sentence caches emptied first (a cold cache: each question's
sentences are embedded anew, as on a corpus the page has not read yet), over the 600 answerable + 300 unanswerable
SQuAD 2.0 tuning questions and RealTime QA's June questions (each as of its quiz date). Per value: answer accuracy,
refusals of the unanswerable, over-refusal, and the latency p50 / p95. Chosen: the smallest value whose SQuAD
accuracy is within 0.005 of embedding every sentence and whose refusals are within 0.01 (it prints the choice and
writes nothing). Nothing here reads the held-out July/August questions or the evaluation sample.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.datasets import default_data_dir, realtimeqa, squad2_tuning
from evals.metrics import answer_correct
from rag.types import Filters


def measure(assistant: Any, cases: list[Any], embedded: int) -> dict[str, float]:
    assistant.ranker.sentences_embedded = embedded
    right = refused_answerable = refused_unanswerable = answerable = unanswerable = 0
    latencies = []
    for case in cases:
        assistant.reader.clear_caches()
        started = time.perf_counter()
        answer = assistant.ask(case.question, filters=Filters(as_of=case.as_of) if case.as_of else None)
        latencies.append(1000 * (time.perf_counter() - started))
        if case.answerable:
            answerable += 1
            refused_answerable += answer.abstained
            right += (not answer.abstained) and answer_correct(answer.text, case)
        else:
            unanswerable += 1
            refused_unanswerable += answer.abstained
    latencies.sort()
    return {"accuracy": right / max(answerable, 1), "refusals": refused_unanswerable / max(unanswerable, 1),
            "over_refusal": refused_answerable / max(answerable, 1), "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(0.95 * (len(latencies) - 1))]}


def choose(rows: dict[int, dict[str, float]]) -> int:
    """The smallest value (0 = all is the largest) within 0.005 accuracy and 0.01 refusals of embedding all."""
    every = rows[0]
    ok = [v for v, r in rows.items() if v and r["accuracy"] >= every["accuracy"] - 0.005
          and r["refusals"] >= every["refusals"] - 0.01]
    return min(ok) if ok else 0


def main(argv: list[str] | None = None) -> int:
    from rag.assistant import Assistant

    parser = argparse.ArgumentParser(prog="python -m evals.tune_embedded", description=__doc__.splitlines()[0])
    parser.add_argument("--values", default="0,24,16,12")
    parser.add_argument("--index", type=Path, default=None, help="SQuAD tuning index (built if missing)")
    parser.add_argument("--news-index", type=Path, default=None, help="RealTime QA index (built if missing)")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    values = sorted({int(v) for v in args.values.split(",")} | {0})
    data = args.data or default_data_dir()
    squad: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="rag-tune-embedded-") as tmp:
        index = args.index or Path(tmp) / "squad"
        files, cases = squad2_tuning(data, index / "dataset")
        with Assistant(index_dir=index) as assistant:
            assistant.ingest([str(f) for f in files], progress=False)
            for v in values:
                squad[v] = measure(assistant, cases, v)
                _print("squad2", v, squad[v])
        news_index = args.news_index or Path(tmp) / "news"
        news_files, news_cases = realtimeqa(data, news_index / "dataset")
        with Assistant(index_dir=news_index) as news:
            news.ingest([str(f) for f in news_files], progress=False)
            june = [c for c in news_cases if "tuning" in c.tags and "answer-in-gold" in c.tags]
            for v in values:
                _print("news", v, measure(news, june, v))
    print(f"chosen: sentences_embedded = {choose(squad)}")
    return 0


def _print(name: str, value: int, row: dict[str, float]) -> None:
    print(f"{name:7} sentences_embedded {value or 'all':>4}  accuracy {row['accuracy']:.3f}  refusals "
          f"{row['refusals']:.3f}  over-refusal {row['over_refusal']:.3f}  p50 {row['p50_ms']:.0f} ms  "
          f"p95 {row['p95_ms']:.0f} ms", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
