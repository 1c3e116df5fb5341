"""Fit the time prior and the passages' context on the tuning split, through `Assistant.retrieve`.

    python -m evals.tune_time [--news-index DIR] [--index DIR] [--answerable 300]

1. The recency prior's weight in retrieval's fused score (`rag.retrieve.hybrid.RECENCY_RRF_WEIGHT`) and in sentence
   ranking (`DEFAULT_WEIGHTS["recency"]`, rag/reading/rerank.py): RealTime QA's June questions, each asked as of its
   quiz date, scored by the gold article first (hit@1), its reciprocal rank in the pool and in the top passages,
   the best sentence holding the answer, and refusals. Chosen: the smallest retrieval weight within 0.005 of
   the best hit@1 + MRR of the top passages, then the smallest ranking weight likewise; when every ranking
   weight scores the same, rag/reading/rerank.py's value is kept (and the note says so).
2. `passage_context_chars`: SQuAD 2.0 tuning questions (answerable ones), scored by the answer in the top 5
   passages and their length. Chosen: the smallest value within 0.005 of the best answer-in-top-5.
Nothing here reads the held-out July/August questions or the evaluation sample.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path
from typing import Any

from evals.datasets import default_data_dir, realtimeqa, squad2_tuning
from evals.metrics import contains
from rag.reading.rerank import DEFAULT_WEIGHTS
from rag.types import Filters

RRF_WEIGHTS = (0.0, 0.008, 0.016, 0.032, 0.064, 0.128)
RANK_WEIGHTS = (0.0, 0.2, 0.5, 1.0, 2.0)
CONTEXT_CHARS = (0, 300, 600, 1000)


def _gold_rank(passages: Any, articles: Any, gold: set[str]) -> float:
    ranks = [i for i, p in enumerate(passages) if articles[p.doc_id].url in gold]
    return 1.0 / (1 + ranks[0]) if ranks else 0.0


def fit_recency(assistant: Any, cases: list[Any]) -> tuple[float, float]:
    """Print the grid; return the chosen (retrieval weight, ranking weight)."""
    rows = []
    answerable = sum("answer-in-gold" in c.tags for c in cases)
    for rrf, rank in itertools.product(RRF_WEIGHTS, RANK_WEIGHTS):
        assistant.retriever.recency_weight = rrf
        assistant.ranker.weights["recency"] = rank
        hit1 = mrr_pool = mrr_top = best = refused = 0.0
        for c in cases:
            found = assistant.retrieve(c.question, filters=Filters(as_of=c.as_of))
            gold = {e.url for e in c.evidence}
            mrr_pool += _gold_rank(found.pool, found.articles, gold)
            mrr_top += _gold_rank(found.top, found.articles, gold)
            hit1 += _gold_rank(found.top[:1], found.articles, gold)
            if "answer-in-gold" in c.tags:
                b = found.reading.best
                best += bool(b and any(contains(b.text, x) for x in c.answers))
                refused += found.reading.support < assistant.reader.min_support
        n = len(cases)
        rows.append((rrf, rank, hit1 / n, mrr_pool / n, mrr_top / n, best / answerable,
                     refused / answerable))
        print(f"retrieval {rrf:<6} ranking {rank:<4} hit@1 {hit1 / n:.3f}  MRR pool {mrr_pool / n:.3f}  "
              f"MRR top {mrr_top / n:.3f}  best sentence {best / answerable:.3f}  "
              f"refused {refused / answerable:.3f}", flush=True)
    top = max(r[2] + r[4] for r in rows)
    rrf = min(r[0] for r in rows if r[2] + r[4] >= top - 0.005)
    at = [r for r in rows if r[0] == rrf]
    if max(r[2] + r[4] for r in at) - min(r[2] + r[4] for r in at) <= 0.005:  # the split cannot tell them apart
        rank = DEFAULT_WEIGHTS["recency"]
        print(f"chosen: retrieval weight {rrf}; every ranking weight scores the same there, so the ranking weight "
              f"stays rag/reading/rerank.py's {rank} (of {len(cases)} June questions)")
    else:
        rank = min(r[1] for r in at if r[2] + r[4] >= max(x[2] + x[4] for x in at) - 0.005)
        print(f"chosen: retrieval weight {rrf}, ranking weight {rank} (of {len(cases)} June questions)")
    return rrf, rank


def fit_context(index: Path, cases: list[Any]) -> int:
    from rag.assistant import Assistant

    rows = []
    for chars in CONTEXT_CHARS:
        with Assistant(index, passage_context_chars=chars) as assistant:
            found = [assistant.retrieve(c.question) for c in cases]
        hits = sum(any(contains(p.text, x) for p in f.top for x in c.answers) for f, c in zip(found, cases, strict=True))
        size = sum(len(p.text) for f in found for p in f.top) / max(1, sum(len(f.top) for f in found))
        rows.append((chars, hits / len(cases)))
        print(f"context {chars:>5} chars: answer in top 5 {hits / len(cases):.3f}, {size:,.0f} characters a passage",
              flush=True)
    best = max(r[1] for r in rows)
    chosen = min(r[0] for r in rows if r[1] >= best - 0.005)
    print(f"chosen: passage_context_chars {chosen} (of {len(cases)} SQuAD 2.0 tuning questions)")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.tune_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--index", type=Path, help="the SQuAD tuning index (default: a temp dir)")
    parser.add_argument("--news-index", type=Path, help="the RealTime QA pages' index (default: a temp dir)")
    parser.add_argument("--answerable", type=int, default=300, help="SQuAD tuning questions for the context fit")
    args = parser.parse_args(argv)
    from rag.assistant import Assistant

    with tempfile.TemporaryDirectory(prefix="rag-tune-time-") as tmp:
        news_index = args.news_index or Path(tmp) / "news"
        files, cases = realtimeqa(args.data, news_index / "dataset")
        with Assistant(news_index) as news:
            news.ingest([str(f) for f in files], progress=False)
            fit_recency(news, [c for c in cases if "tuning" in c.tags])
        index = args.index or Path(tmp) / "squad"
        files, squad = squad2_tuning(args.data, index / "dataset")
        with Assistant(index) as assistant:
            assistant.ingest([str(f) for f in files], progress=False)
        fit_context(index, [c for c in squad if c.answerable][: args.answerable])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
