"""The article-lead list's weight in retrieval's fusion (rag/index/leads.py), on the tuning splits only.

    python -m evals.tune_leads [--weights 0,0.25,0.5,1] [--index DIR] [--news-index DIR] [--answerable 600]

Static chunk vectors with lead vectors, over the answerable SQuAD 2.0 tuning questions (outside the evaluation
sample) and RealTime QA's June questions (each asked as of its quiz date): for each weight, the right article
first and in the top 5, the answer in the top 5 and answer accuracy, as the harness scores them (top 5). It fits
nothing by itself: its table is why `RAG_LEAD_VECTORS` is off by default (README, "Speed, scale and deployment").
Nothing here reads the held-out July/August questions or the evaluation sample.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from evals.datasets import default_data_dir, realtimeqa, squad2_tuning
from evals.run import evaluate

METRICS = ("hit@1", "hit@5", "answer_in_top@5", "correct")


def sweep(assistant: Any, cases: list[Any], weights: list[float], name: str) -> list[dict[str, Any]]:
    """One row per weight: the mean of each metric over the answerable cases."""
    rows = []
    cases = [c for c in cases if c.answerable]
    for weight in weights:
        assistant.retriever.lead_weight = weight
        results = evaluate(assistant, cases, [1, 5], progress=False)
        row = {"set": name, "weight": weight, "cases": len(results)}
        row.update({m: sum(float(r[m]) for r in results) / max(len(results), 1) for m in METRICS})
        rows.append(row)
        print(f"{name:8} weight {weight:<5g} {len(results)} cases  " +
              "  ".join(f"{m} {row[m]:.3f}" for m in METRICS), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    from rag.assistant import Assistant

    parser = argparse.ArgumentParser(prog="python -m evals.tune_leads", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="0,0.25,0.5,1")
    parser.add_argument("--index", type=Path, default=None, help="SQuAD tuning index (built if missing)")
    parser.add_argument("--news-index", type=Path, default=None, help="RealTime QA index (built if missing)")
    parser.add_argument("--answerable", type=int, default=600)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    weights = [float(w) for w in args.weights.split(",")]
    data = args.data or default_data_dir()
    with tempfile.TemporaryDirectory(prefix="rag-tune-leads-") as tmp:
        index = args.index or Path(tmp) / "squad"
        files, cases = squad2_tuning(data, index / "dataset", args.answerable, 0)
        with Assistant(index_dir=index, chunk_encoder="static", lead_vectors="on") as assistant:
            assistant.ingest([str(f) for f in files], progress=False)
            sweep(assistant, cases, weights, "squad2")
        news_index = args.news_index or Path(tmp) / "news"
        news_files, news_cases = realtimeqa(data, news_index / "dataset")
        with Assistant(index_dir=news_index, chunk_encoder="static", lead_vectors="on") as news:
            news.ingest([str(f) for f in news_files], progress=False)
            sweep(news, [c for c in news_cases if "tuning" in c.tags], weights, "news")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
