"""Measure the thresholds of the citation verifier (rag/generate/grounded.py, ClaimVerifier) on SQuAD 2.0 dev.

Claims are made from real questions and their gold answers, "<question without '?'>: <answer>.", the way a
model's answer echoes the question. Three kinds:
- supported: the claim against its own paragraph;
- wrong passage: the claim against another paragraph of the same article (same topic, answer absent);
- wrong fact: the claim carrying another question's answer (same article), against the first one's paragraph.
For a grid of thresholds it prints the share of each kind the verifier accepts; the chosen defaults keep both
wrong kinds at or under 10% and accept the most supported claims.

    python -m evals.verify [--data DIR] [--cases 600]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from pathlib import Path
from typing import Any

from rag.generate.grounded import ClaimVerifier, Evidence
from rag.index.embed import Encoder
from rag.types import Article, Passage

KINDS = ("supported", "wrong_passage", "wrong_fact")
MAX_WRONG = 0.10


def claims(data_dir: Path, cases: int, seed: int = 7) -> list[tuple[str, str, str, Article, str]]:
    """(kind, question, claim, article of the passage, gold answer) for `cases` sampled answerable questions."""
    data = json.loads((data_dir / "squad2-dev" / "dev-v2.0.derived-from-explorer.json").read_text())["data"]
    rng = random.Random(seed)
    pool = []
    for doc in data:
        paragraphs = [p["context"] for p in doc["paragraphs"]]
        answers = [max(qa["answers"], key=len) for p in doc["paragraphs"] for qa in p["qas"] if qa["answers"]]
        for i, p in enumerate(doc["paragraphs"]):
            for qa in p["qas"]:
                if qa["answers"] and not qa.get("is_impossible"):
                    pool.append((doc["title"], i, paragraphs, qa["question"], max(qa["answers"], key=len), answers))
    out = []
    for title, i, paragraphs, question, answer, answers in rng.sample(pool, cases):
        claim = f"{question.strip().rstrip('?')}: {answer}."
        own = Article(id=f"{title}/{i}", text=paragraphs[i])
        others = [j for j, text in enumerate(paragraphs) if j != i and answer not in text]
        wrong = [a for a in answers if a != answer and a not in paragraphs[i] and a.lower() not in answer.lower()]
        out.append(("supported", question, claim, own, answer))
        if others:
            j = rng.choice(others)
            out.append(("wrong_passage", question, claim, Article(id=f"{title}/{j}", text=paragraphs[j]), answer))
        if wrong:
            out.append(("wrong_fact", question, f"{question.strip().rstrip('?')}: {rng.choice(wrong)}.", own, answer))
    return out


def measure(verifier: ClaimVerifier,
            rows: list[tuple[str, str, str, Article, str]]) -> list[tuple[str, Evidence, bool]]:
    """(kind, evidence, whether the most similar sentence holds the gold answer) per claim."""
    measured = []
    for kind, question, claim, article, answer in rows:
        passage = Passage(article.id, article.id, article.text, 0, len(article.text), 1.0)
        e = verifier.measure(claim, passage, article, question)
        right_span = e.span is not None and answer in article.text[e.span[0]:e.span[1]]
        measured.append((kind, e, right_span))
    return measured


def accepted(measured: list[tuple[str, Evidence, bool]], point: tuple[float, ...]) -> dict[str, float]:
    verifier = ClaimVerifier(None, *point)
    rates = {}
    for kind in KINDS:
        rows = [e for k, e, _ in measured if k == kind]
        ok = [not e.missing and e.span is not None and verifier.accepts(e) for e in rows]
        rates[kind] = sum(ok) / len(ok) if ok else 0.0
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.verify", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    parser.add_argument("--cases", type=int, default=600)
    args = parser.parse_args(argv)
    verifier = ClaimVerifier(Encoder())
    measured = measure(verifier, claims(args.data, args.cases))
    counts = {k: sum(1 for m in measured if m[0] == k) for k in KINDS}
    print(f"claims: {counts}")
    grid: list[tuple[tuple[float, ...], dict[str, float]]] = []
    for point in itertools.product((0.3, 0.4, 0.5, 0.6, 0.7), (0.3, 0.4, 0.5, 0.6), (0.7, 0.8, 0.9),
                                   (0.0, 0.5, 0.67, 0.8, 1.0)):
        grid.append((point, accepted(measured, point)))
    default = (verifier.min_coverage, verifier.min_similarity, verifier.strong_similarity, verifier.min_new_coverage)
    allowed = [g for g in grid if g[1]["wrong_passage"] <= MAX_WRONG and g[1]["wrong_fact"] <= MAX_WRONG]
    best = max(allowed, key=lambda g: (g[1]["supported"], -g[1]["wrong_fact"] - g[1]["wrong_passage"]))
    print("| min_coverage | min_similarity | strong_similarity | min_new_coverage | supported accepted | "
          "wrong passage accepted | wrong fact accepted |\n|---|---|---|---|---|---|---|")
    shown: list[Any] = sorted(allowed, key=lambda g: -g[1]["supported"])[:8]
    for point, rates in shown + [g for g in grid if g[0] == default and g not in shown]:
        mark = " (default)" if point == default else ""
        print(f"| {point[0]} | {point[1]} | {point[2]} | {point[3]}{mark} | {rates['supported']:.3f} | "
              f"{rates['wrong_passage']:.3f} | {rates['wrong_fact']:.3f} |")
    right = [r for k, e, r in measured if k == "supported"]
    print(f"\nbest under {MAX_WRONG:.0%} wrong: {best[0]}; the cited span holds the gold answer for "
          f"{sum(right) / len(right):.3f} of supported claims")
    return 0


if __name__ == "__main__":
    sys.exit(main())
