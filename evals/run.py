"""`rag eval`: ingest a corpus, ask every gold question, score, print a table, write reports, gate CI."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.datasets import DATASETS, default_data_dir, load_dataset
from evals.gold import GoldCase, GoldError, load_gold
from evals.metrics import aggregate, by_tag, normalize, score_case

HEADLINE = ["answer_accuracy", "citation_precision", "citation_recall", "span_exact", "refusal_precision",
            "refusal_recall", "over_refusal", "short_em", "short_f1", "mrr"]


def _parse_gates(items: list[str]) -> dict[str, float]:
    gates = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            gates[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise GoldError(f"--fail-under takes METRIC=VALUE, got {item!r}")
    return gates


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def evaluate(assistant: Any, cases: list[GoldCase], ks: list[int], progress: bool = True) -> list[dict[str, Any]]:
    from tqdm import tqdm

    from rag.retrieve import standalone_query

    results = []
    texts: dict[str, str] | None = None
    for case in tqdm(cases, desc="eval", unit="q", disable=not progress or not sys.stderr.isatty()):
        answer = assistant.ask(case.question, history=case.history)
        ranked = assistant.retriever.run(standalone_query(case.question, case.history), max(ks))
        articles = assistant.catalog.articles([c.doc_id for c in answer.citations] + [p.doc_id for p in ranked])
        result = score_case(case, answer, ranked, articles, ks)
        quotes = [e for e in case.evidence if e.quote and e.doc_id]
        if quotes:
            if texts is None:  # the corpus, normalised once for every case's evidence check
                texts = {d: normalize(a.text) for d, a in assistant.catalog.articles(
                    [d.doc_id for d in assistant.documents()]).items()}
            result["evidence_found"] = all(any(normalize(e.quote) in t for d, t in texts.items()
                                               if d == e.doc_id or d.endswith("/" + e.doc_id)) for e in quotes)
        results.append(result)
    return results


def format_table(agg: dict[str, Any], ks: list[int]) -> str:
    rows = [(m, agg.get(m)) for m in HEADLINE]
    rows += [(f"{name}@{k}", agg.get(f"{name}@{k}")) for name in ("hit", "answer_in_top", "recall") for k in ks]
    rows += [(m, agg.get(m)) for m in ("latency_p50_ms", "latency_p95_ms", "ingest_seconds", "ingest_chunks",
                                          "ingest_chunks_per_s", "peak_rss_mb")]
    width = max(len(m) for m, _ in rows)
    lines = [f"{'metric'.ljust(width)}  value", f"{'-' * width}  -----"]
    for m, v in rows:
        lines.append(f"{m.ljust(width)}  {'n/a' if v is None else (f'{v:.4f}' if isinstance(v, float) and v <= 1.0 and 'ms' not in m and 'seconds' not in m else v)}")
    return "\n".join(lines)


def write_reports(out: Path, report: dict[str, Any], table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    lines = [f"# Evaluation: {report['gold']}", "", f"commit `{report['commit']}`, {report['cases']} cases", "",
             "```", table, "```", "", "## By tag", "", "| tag | cases | answer_accuracy | refusal_recall | over_refusal |",
             "|---|---|---|---|---|"]
    for tag, agg in report["by_tag"].items():
        lines.append(f"| {tag} | {agg['cases']} | {agg['answer_accuracy']} | {agg['refusal_recall']} | {agg['over_refusal']} |")
    failures = [r for r in report["results"] if (r["answerable"] and not r.get("correct")) or (not r["answerable"] and not r["abstained"])]
    lines += ["", f"## Misses ({len(failures)})", ""]
    for r in failures[:200]:
        lines.append(f"- `{r['id']}` {r['question']} → {r['answer'][:300]}")
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main(args: argparse.Namespace) -> int:
    from rag.assistant import Assistant
    from rag.config import Settings

    ks = sorted(set(args.k))
    gates = _parse_gates(args.fail_under)
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        work = Path(tmp)
        gold_path = Path(args.gold)
        corpus: list[str] = list(args.corpus or [])
        if gold_path.suffix == ".jsonl" or gold_path.exists():
            cases = load_gold(gold_path)
            if args.limit:
                cases = cases[: args.limit]
        elif args.gold in DATASETS:
            files, cases = load_dataset(args.gold, default_data_dir(), work, args.limit)
            corpus = [str(f) for f in files] + corpus
        else:
            raise GoldError(f"{args.gold!r} is neither a gold .jsonl file nor a dataset ({', '.join(DATASETS)})")
        settings = Settings.from_env().with_overrides(index_dir=args.index or work / "index", top_k=args.top_k,
                                                      chroma_url=args.chroma_url)
        assistant = Assistant(settings=settings)
        ingest_seconds, chunks = 0.0, 0
        if corpus:
            started = time.perf_counter()
            ingest = assistant.ingest(corpus)
            ingest_seconds, chunks = time.perf_counter() - started, ingest.chunks
            for s in ingest.skipped:
                print(f"eval: corpus file skipped: {s.path}: {s.reason}", file=sys.stderr)
        results = evaluate(assistant, cases, ks)
        agg = aggregate(results, ks)
        agg.update({"ingest_seconds": round(ingest_seconds, 2), "ingest_chunks": chunks,
                    "ingest_chunks_per_s": round(chunks / ingest_seconds, 1) if ingest_seconds else None,
                    "peak_rss_mb": _peak_rss_mb()})
        missing = [r["id"] for r in results if r.get("evidence_found") is False]
        table = format_table(agg, ks)
        print(f"{args.gold}: {len(cases)} cases, top_k={settings.top_k}")
        print(table)
        if missing:
            print(f"eval: evidence quotes not found in the corpus for: {', '.join(missing)}", file=sys.stderr)
        report = {"gold": args.gold, "commit": _git_commit(), "cases": len(cases), "ks": ks,
                  "settings": {k: str(v) for k, v in vars(settings).items()}, "aggregate": agg,
                  "by_tag": by_tag(results, ks), "results": results, "evidence_missing": missing}
        if args.report:
            write_reports(Path(args.report), report, table)
            print(f"eval: wrote {args.report}/report.json and report.md")
    failed = [f"{m}={agg.get(m)} < {v}" for m, v in gates.items() if agg.get(m) is None or agg[m] < v]
    if missing:
        failed.append(f"{len(missing)} gold evidence quotes are not in the corpus")
    if failed:
        print("eval: FAILED gate: " + "; ".join(failed), file=sys.stderr)
        return 3
    if gates:
        print("eval: gate passed: " + ", ".join(f"{m}>={v}" for m, v in gates.items()))
    return 0
