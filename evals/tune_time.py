"""Fit the time prior and the passages' context on the tuning split, through `Assistant.retrieve`.

    python -m evals.tune_time [--news-index DIR] [--archive-index DIR] [--index DIR] [--answerable 300]

1. The recency prior (rag/retrieve/timeframe.py): its weight in retrieval's fused score
   (`rag.retrieve.hybrid.RECENCY_RRF_WEIGHT`) and how much a question with no time words leans toward the month
   before its date (`PLAIN_LEAN`), on RealTime QA's 2023 weeks (the questions whose answer is in one of their own
   pages, each asked as of its quiz date): the gold page in the top 1 and 5, the answer in the top 5 passages, and
   the best sentence holding it, for the questions with time words and those without. And on archive-style
   questions: the seed gold set's answerable questions about the bundled article (January 2022), asked with no
   time words over it and the 2023 pages, the day after the newest page (as a reader of the archive would ask
   them), which a prior toward the newest articles can only hurt. Chosen: the
   smallest retrieval weight within 0.005 of the best hit@1 + answer-in-top-5 of the 2023 questions; `PLAIN_LEAN`
   0 unless leaning helps the 2023 questions without time words by more than 0.005 and costs no archive answer.
2. `passage_context_chars`: SQuAD 2.0 tuning questions (answerable ones), scored by the answer in the top 5
   passages and their length. Chosen: the smallest value within 0.005 of the best answer-in-top-5.
Nothing here reads a held-out question.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from evals.datasets import ASIDE_TAG, default_data_dir, realtimeqa_weeks, squad2_tuning
from evals.gold import load_gold
from evals.metrics import answer_correct, contains
from rag.retrieve import timeframe
from rag.types import Filters

RRF_WEIGHTS = (0.016, 0.032, 0.064)
PLAIN_LEANS = (0.0, 0.5, 1.0)
CONTEXT_CHARS = (0, 300, 600, 1000)
SEED = Path(__file__).resolve().parent.parent / "corpus"
SEED_GOLD = Path(__file__).resolve().parent / "gold" / "seed.jsonl"


def _news_row(assistant: Any, cases: list[Any]) -> dict[str, float]:
    hit1 = hit5 = top5 = best = 0.0
    for c in cases:
        found = assistant.retrieve(c.question, filters=Filters(as_of=c.as_of))
        gold = {e.url for e in c.evidence}
        urls = [found.articles[p.doc_id].url for p in found.top]
        hit1 += bool(urls[:1] and urls[0] in gold)
        hit5 += any(u in gold for u in urls)
        top5 += any(contains(p.text, x) for p in found.top for x in c.answers)
        b = found.reading.best
        best += bool(b and any(contains(b.text, x) for x in c.answers))
    n = max(1, len(cases))
    return {"hit@1": hit1 / n, "hit@5": hit5 / n, "answer@5": top5 / n, "best": best / n}


def fit_recency(news: Any, cases: list[Any], archive: Any, archive_cases: list[Any]) -> tuple[float, float]:
    """Print the grid; return the chosen (retrieval weight, plain lean)."""
    timed = [c for c in cases if "time-word" in c.tags]
    plain = [c for c in cases if "no-time-word" in c.tags]
    rows = []
    for rrf, lean in itertools.product(RRF_WEIGHTS, PLAIN_LEANS):
        news.retriever.recency_weight = archive.retriever.recency_weight = rrf
        timeframe.PLAIN_LEAN = lean
        a, b = _news_row(news, timed), _news_row(news, plain)
        right = sum(not ans.abstained and answer_correct(ans.text, c)
                    for c in archive_cases for ans in [archive.ask(c.question, filters=Filters(as_of=c.as_of))])
        rows.append((rrf, lean, a, b, right))
        print(f"retrieval {rrf:<6} plain lean {lean:<5} time words ({len(timed)}): " +
              " ".join(f"{k} {v:.3f}" for k, v in a.items()) + f" | none ({len(plain)}): " +
              " ".join(f"{k} {v:.3f}" for k, v in b.items()) + f" | archive {right}/{len(archive_cases)}", flush=True)

    def news_score(r: tuple[Any, ...]) -> float:
        both = [(r[2][k] * len(timed) + r[3][k] * len(plain)) / max(1, len(cases)) for k in ("hit@1", "answer@5")]
        return sum(both)

    neutral = [r for r in rows if r[1] == 0.0]
    top = max(news_score(r) for r in neutral)
    rrf = min(r[0] for r in neutral if news_score(r) >= top - 0.005)
    at = {r[1]: r for r in rows if r[0] == rrf}
    lean = 0.0
    for value in PLAIN_LEANS[1:]:
        gain = (at[value][3]["hit@1"] + at[value][3]["answer@5"]) - (at[0.0][3]["hit@1"] + at[0.0][3]["answer@5"])
        if gain > 0.005 and at[value][4] >= at[0.0][4]:
            lean = value
            break
    print(f"chosen: retrieval weight {rrf}, plain lean {lean} ({len(cases)} questions of the 2023 weeks, "
          f"{len(archive_cases)} archive-style)")
    return rrf, lean


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
    parser.add_argument("--news-index", type=Path, help="the index of RealTime QA's 2023 pages (default: a temp dir)")
    parser.add_argument("--archive-index", type=Path,
                        help="the bundled article with the 2023 pages (default: a temp dir)")
    parser.add_argument("--answerable", type=int, default=300, help="SQuAD tuning questions for the context fit")
    args = parser.parse_args(argv)
    from rag.assistant import Assistant

    with tempfile.TemporaryDirectory(prefix="rag-tune-time-") as tmp:
        news_index = args.news_index or Path(tmp) / "news"
        files, cases = realtimeqa_weeks(args.data, news_index / "dataset", "2023")
        archive_index = args.archive_index or Path(tmp) / "archive"
        seed_cases = [c for c in load_gold(SEED_GOLD) if c.answerable and not c.history]
        with Assistant(news_index) as news, Assistant(archive_index) as archive:
            news.ingest([str(f) for f in files], progress=False)
            archive.ingest([str(SEED)] + [str(f) for f in files], progress=False)
            newest = max(d.published for d in archive.documents())[:10]
            after = (date.fromisoformat(newest) + timedelta(days=1)).isoformat()
            seed_cases = [replace(c, as_of=after) for c in seed_cases]
            fit_recency(news, [c for c in cases if ASIDE_TAG not in c.tags], archive, seed_cases)
        index = args.index or Path(tmp) / "squad"
        files, squad = squad2_tuning(args.data, index / "dataset")
        with Assistant(index) as assistant:
            assistant.ingest([str(f) for f in files], progress=False)
        fit_context(index, [c for c in squad if c.answerable][: args.answerable])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
