"""Where answers are lost, question by question, on a tuning split: the answer not among the passages, not in a
sentence the reader scored, split over two sentences, a wrong sentence first, or refused while the best sentence
held it.

    python -m evals.diagnose realtimeqa-2023 --index DIR [--limit N] [--out FILE]

It reads misses, so it is for tuning splits only (it refuses the held-out 2024 weeks). It prints the count of
each kind of loss, by question kind, and with `--out` writes every case's diagnosis as JSONL.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from evals.datasets import ASIDE_TAG, default_data_dir, load_dataset
from evals.metrics import answer_correct, contains
from rag.text.sentences import sentence_spans
from rag.types import Filters

HELD_OUT = ("realtimeqa-2024", "squad2", "squad2-unseen")
LOSSES = ("right", "not retrieved", "not in a sentence read", "split over sentences", "wrong sentence first",
          "refused while right", "composed wrong")


def diagnose(assistant: Any, case: Any, top_k: int = 5) -> dict[str, Any]:
    """One answerable case's fate: which of LOSSES, with what the reader saw."""
    filters = Filters(as_of=case.as_of) if case.as_of else None
    answer = assistant.ask(case.question, filters=filters)
    found = assistant.retrieve(case.question, top_k=top_k, filters=filters)
    golds = case.answers
    holds = [any(contains(s.text, g) for g in golds) for s in found.reading.sentences]
    in_passages = any(contains(p.text, g) for p in found.top for g in golds)
    best_holds = bool(holds) and holds[0]
    in_sentences = any(
        any(contains(p.text[a:b], g) for g in golds) for p in found.top for a, b in sentence_spans(p.text))
    if answer_correct(answer.text, case) and not answer.abstained:
        loss = "right"
    elif not in_passages:
        loss = "not retrieved"
    elif not in_sentences:
        loss = "split over sentences"
    elif not any(holds):
        loss = "not in a sentence read"
    elif answer.abstained and best_holds:
        loss = "refused while right"
    elif not best_holds:
        loss = "wrong sentence first"
    else:
        loss = "composed wrong"
    first_right = next((i for i, h in enumerate(holds) if h), None)
    return {"id": case.id, "question": case.question, "gold": golds[0], "tags": list(case.tags), "loss": loss,
            "abstained": answer.abstained, "support": answer.support, "answer": answer.text[:400],
            "first_right_sentence": first_right, "sentences": len(holds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.diagnose", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("--index", type=Path, required=True, help="the dataset's index (as `rag eval --index`)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.dataset in HELD_OUT:
        print(f"evals.diagnose reads misses: {args.dataset} is held out", file=sys.stderr)
        return 2
    from rag.assistant import Assistant

    files, cases = load_dataset(args.dataset, args.data, args.index / "dataset", args.limit)
    cases = [c for c in cases if c.answerable and ASIDE_TAG not in c.tags]
    with Assistant(index_dir=args.index) as assistant:
        assistant.ingest([str(f) for f in files], progress=False)
        rows = [diagnose(assistant, c) for c in cases]
    counts = Counter(r["loss"] for r in rows)
    print(f"{args.dataset}: {len(rows)} answerable")
    for loss in LOSSES:
        print(f"  {loss:<24} {counts[loss]:>5}  {counts[loss] / max(1, len(rows)):.3f}")
    kinds = sorted({t for r in rows for t in r["tags"][2:]})
    print("\nby kind: " + "  ".join(f"{k}: {sum(r['loss'] == 'right' for r in rows if k in r['tags'])}/"
                                    f"{sum(k in r['tags'] for r in rows)}" for k in kinds))
    if args.out:
        with args.out.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
