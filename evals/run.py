"""`rag eval`: ingest a corpus, ask every gold question, score, print a table, write reports, gate CI."""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.charts import write_abstention_chart, write_answer_chart, write_chart
from evals.datasets import ASIDE_TAG, DATASETS, default_data_dir, load_dataset
from evals.gold import GoldCase, GoldError, load_gold
from evals.metrics import (
    abstention_curve,
    aggregate,
    aggregate_retrieval,
    answer_curve,
    by_tag,
    normalize,
    score_case,
    score_retrieval,
)
from rag.types import Filters

HEADLINE = ["answer_accuracy", "citation_precision", "citation_recall", "span_exact", "refusal_precision",
            "refusal_recall", "over_refusal", "wrong_answers", "short_em", "short_f1", "short_f1_all", "short_rate",
            "mrr"]


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


def _thresholds(min_support: float) -> list[float]:
    """Support thresholds for the trade-off curves: from the configured one up, since an answer refused below it was
    never composed and cannot be scored."""
    return [round(min_support, 3)] + [i / 100 for i in range(0, 96, 2) if i / 100 > min_support]


def _git_commit() -> str:
    try:
        where = Path(__file__).resolve().parent
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=where)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=where)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _rss_mb() -> float:
    """Resident memory now (Linux); 0 where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _bar(items: list[Any], desc: str, progress: bool) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="q", disable=not progress or not sys.stderr.isatty())


def evaluate(assistant: Any, cases: list[GoldCase], ks: list[int], progress: bool = True) -> list[dict[str, Any]]:
    """Ask every case as a user would (that call's timings are the latency); then rank passages down to
    max(k) with the same pipeline for the retrieval metrics (a second, cache-warm call)."""
    results = []
    texts: dict[str, str] | None = None
    for case in _bar(cases, "eval", progress):
        filters = Filters(as_of=case.as_of) if case.as_of else None
        answer = assistant.ask(case.question, history=case.history, filters=filters)
        ranked = assistant.search(case.question, history=case.history, top_k=max(ks), filters=filters)
        articles = assistant.catalog.articles([c.doc_id for c in answer.citations] + [p.doc_id for p in ranked])
        result = score_case(case, answer, ranked, articles, ks)
        result["retrieve_ms"] = answer.timings_ms.get("retrieve", 0.0)
        result.update(backend=answer.backend, fallback=answer.fallback, dropped=len(answer.dropped))
        quotes = [e for e in case.evidence if e.quote and e.doc_id]
        if quotes:
            if texts is None:  # the corpus, normalised once for every case's evidence check
                texts = {d: normalize(a.text) for d, a in assistant.catalog.articles(
                    [d.doc_id for d in assistant.documents()]).items()}
            result["evidence_found"] = all(any(normalize(e.quote) in t for d, t in texts.items()
                                               if d == e.doc_id or d.endswith("/" + e.doc_id)) for e in quotes)
        results.append(result)
    return results


def evaluate_baseline(baseline: Any, cases: list[GoldCase], ks: list[int], progress: bool = True) -> list[dict[str, Any]]:
    """Retrieval metrics of the baseline on the answerable cases (it has no answerer of its own offline)."""
    from rag.retrieve.hybrid import standalone_query

    results = []
    for case in _bar([c for c in cases if c.answerable], "baseline", progress):
        started = time.perf_counter()
        ranked = baseline.retrieve(standalone_query(case.question, case.history), max(ks), case.as_of)
        result: dict[str, Any] = {"id": case.id, "answerable": True, "tags": list(case.tags),
                                  "retrieve_ms": round((time.perf_counter() - started) * 1000, 1)}
        result.update(score_retrieval(case, ranked, ks))
        results.append(result)
    return results


COMPARED = ["mrr", "passage_chars_mean", "retrieve_p50_ms", "retrieve_p95_ms", "ingest_seconds", "ingest_chunks", "ingest_chunks_per_s",
            "rss_growth_mb"]
LOWER_IS_BETTER = {"retrieve_p50_ms", "retrieve_p95_ms", "ingest_seconds", "rss_growth_mb"}


_UNITS = ("_ms", "_seconds", "_per_s", "_mb", "_mean")


def _fmt(v: Any, name: str = "") -> str:
    """Rates and shares with 4 decimals; times, speeds and sizes with 1 (or 2 under a second)."""
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if name.endswith(_UNITS):
            return f"{v:.2f}" if abs(v) < 1 else f"{v:.1f}"
        return f"{v:.4f}"
    return str(v)


def compare_table(ours: dict[str, Any], base: dict[str, Any], ks: list[int]) -> str:
    """Retrieval metrics and cost, side by side, with ratio = rag / baseline."""
    names = [f"{n}@{k}" for n in ("hit", "answer_in_top", "recall") for k in ks] + COMPARED
    rows = []
    for m in names:
        a, b = ours.get(m), base.get(m)
        if a is None and b is None:
            continue
        ratio = f"{a / b:.2f}x" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "n/a"
        better = ("(lower is better)" if m in LOWER_IS_BETTER else
                  "(text per retrieved passage: what a reader or an LLM must read)" if m == "passage_chars_mean" else "")
        rows.append((m, _fmt(a, m), _fmt(b, m), ratio, better))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'metric'.ljust(width)}  {'rag':>10}  {'baseline':>10}  {'ratio':>7}",
             f"{'-' * width}  {'-' * 10}  {'-' * 10}  {'-' * 7}"]
    lines += [f"{m.ljust(width)}  {a:>10}  {b:>10}  {r:>7}  {note}".rstrip() for m, a, b, r, note in rows]
    return "\n".join(lines)


def format_table(agg: dict[str, Any], ks: list[int]) -> str:
    rows = [(m, agg.get(m)) for m in HEADLINE]
    rows += [(f"{name}@{k}", agg.get(f"{name}@{k}")) for name in ("hit", "answer_in_top", "recall") for k in ks]
    rows += [(m, agg.get(m)) for m in ("passage_chars_mean", "latency_p50_ms", "latency_p95_ms", "retrieve_p50_ms", "retrieve_p95_ms",
                                          "ingest_seconds", "ingest_chunks", "ingest_chunks_per_s", "rss_growth_mb",
                                          "peak_rss_mb")]
    width = max(len(m) for m, _ in rows)
    lines = [f"{'metric'.ljust(width)}  value", f"{'-' * width}  -----"]
    for m, v in rows:
        lines.append(f"{m.ljust(width)}  {_fmt(v, m)}")
    return "\n".join(lines)


def write_reports(out: Path, report: dict[str, Any], table: str, comparison: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    lines = [f"# Evaluation: {report['gold']}", "", f"commit `{report['commit']}`, {report['cases']} cases", "",
             "```", table, "```", ""]
    if comparison:
        lines += ["## rag vs LlamaIndex's default pipeline (same corpus, model and process)", "",
                  f"Baseline: {report['baseline']['pipeline']}. Ratio = rag / baseline.", "",
                  "```", comparison, "```", "", "![retrieval](retrieval.png)", ""]
    curve = [c for c in report.get("abstention_curve", []) if c["refusal_recall"] is not None
             and c["over_refusal"] is not None]
    if curve:
        lines += ["## Abstention trade-off", "", f"Reader `{report['reader']['name']}`, `min_support` = {report['reader']['min_support']}.",
                  "", "![abstention](abstention.png)", "", "| threshold | refusal_recall | over_refusal |", "|---|---|---|"]
        lines += [f"| {c['threshold']:.2f} | {c['refusal_recall']:.3f} | {c['over_refusal']:.3f} |" for c in curve[::2]]
        lines.append("")
    answers = [c for c in report.get("answer_curve", []) if c["refused"] is not None]
    if answers:
        lines += ["## Answered right, wrong, refused (answerable questions)", "",
                  f"As the support threshold rises from the configured `min_support`, "
                  f"{report['reader']['min_support']}.", "", "![answers](answers.png)", "",
                  "| threshold | refused | right | wrong |", "|---|---|---|---|"]
        lines += [f"| {c['threshold']:.2f} | {c['refused']:.3f} | {c['right']:.3f} | {c['wrong']:.3f} |"
                  for c in answers[::3]]
        lines.append("")
    if "aside" in report:
        apart = report["aside"]["aggregate"]
        lines += [f"## Reported apart: {report['aside']['tag']} ({apart['cases']})", "",
                  f"answer accuracy {_fmt(apart['answer_accuracy'])}, refused {_fmt(apart['over_refusal'])}, "
                  f"wrong answers {_fmt(apart['wrong_answers'])}", ""]
    k = max(report["ks"])
    base_tags = report.get("baseline", {}).get("by_tag", {})
    lines += ["## By tag", "", f"| tag | cases | answer_accuracy | wrong_answers | refusal_recall | over_refusal | "
              f"hit@1 | hit@{k} | answer_in_top@{k} | baseline hit@{k} | baseline answer_in_top@{k} |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for tag, agg in report["by_tag"].items():
        base = base_tags.get(tag, {})
        lines.append(f"| {tag} | {agg['cases']} | {_fmt(agg['answer_accuracy'])} | {_fmt(agg['wrong_answers'])} | "
                     f"{_fmt(agg['refusal_recall'])} | {_fmt(agg['over_refusal'])} | {_fmt(agg.get('hit@1'))} | "
                     f"{_fmt(agg.get(f'hit@{k}'))} | {_fmt(agg.get(f'answer_in_top@{k}'))} | "
                     f"{_fmt(base.get(f'hit@{k}'))} | {_fmt(base.get(f'answer_in_top@{k}'))} |")
    failures = [r for r in report["results"] if (r["answerable"] and not r.get("correct")) or (not r["answerable"] and not r["abstained"])]
    lines += ["", f"## Misses ({len(failures)})", ""]
    for r in failures[:200]:
        lines.append(f"- `{r['id']}` {r['question']} → {r['response']['answer'][:300]}")
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
            # With --index the dataset's corpus file lives beside it, so a re-run re-embeds nothing.
            corpus_dir = Path(args.index) / "dataset" if args.index else work
            data_dir = Path(args.data) if getattr(args, "data", None) else default_data_dir()
            files, cases = load_dataset(args.gold, data_dir, corpus_dir, args.limit)
            corpus = [str(f) for f in files] + corpus
        else:
            raise GoldError(f"{args.gold!r} is neither a gold .jsonl file nor a dataset ({', '.join(DATASETS)})")
        with_baseline = bool(getattr(args, "baseline", False))
        if with_baseline and not corpus:
            raise GoldError("--baseline builds both pipelines from the same files: give --corpus PATH")
        settings = Settings.from_env().with_overrides(index_dir=args.index or work / "index", top_k=args.top_k,
                                                      chroma_url=args.chroma_url)
        assistant = Assistant(settings=settings)
        # Costs are of ingesting and answering: the model is loaded (and torch imported) before the clocks start.
        assistant.embed_model.encode(["warm-up"])
        assistant.chunk_encoder.encode(["warm-up"])
        importlib.import_module("ingest.pipeline")  # and LlamaIndex with it: the baseline imports it before its clock
        rss_before = _rss_mb()
        ingest_seconds, chunks = 0.0, 0
        if corpus:
            started = time.perf_counter()
            ingest = assistant.ingest(corpus)
            ingest_seconds, chunks = time.perf_counter() - started, ingest.chunks
            for s in ingest.skipped:
                print(f"eval: corpus file skipped: {s.path}: {s.reason}", file=sys.stderr)
        results = evaluate(assistant, cases, ks)
        # The headline figures are of the scored cases; those tagged ASIDE_TAG (no page holds their answer) apart.
        aside = [r for r in results if ASIDE_TAG in r["tags"]]
        scored = [r for r in results if ASIDE_TAG not in r["tags"]]
        agg = aggregate(scored, ks)
        apart = aggregate(aside, ks) if aside else None
        agg.update({"ingest_seconds": round(ingest_seconds, 2), "ingest_chunks": chunks,
                    "ingest_chunks_per_s": round(chunks / ingest_seconds, 1) if ingest_seconds else None,
                    "rss_growth_mb": round(_rss_mb() - rss_before, 1)})
        base_agg: dict[str, Any] | None = None
        base_results: list[dict[str, Any]] = []
        if with_baseline:
            from evals.baseline import LlamaIndexBaseline
            from rag.index.llama_embedding import SentenceEmbedding

            embed_model = SentenceEmbedding(settings.embed_model, embed_batch_size=settings.embed_batch_size)
            embed_model.encode(["warm-up"])
            rss_before = _rss_mb()
            baseline = LlamaIndexBaseline(work, embed_model, max_file_bytes=settings.max_file_bytes)
            baseline.build(corpus)
            base_results = evaluate_baseline(baseline, [c for c in cases if ASIDE_TAG not in c.tags], ks)
            base_agg = aggregate_retrieval(base_results, ks)
            base_agg.update({"ingest_seconds": round(baseline.ingest_seconds, 2), "ingest_chunks": baseline.chunks,
                             "ingest_chunks_per_s": round(baseline.chunks / baseline.ingest_seconds, 1)
                             if baseline.ingest_seconds else None,
                             "rss_growth_mb": round(_rss_mb() - rss_before, 1)})
        agg["peak_rss_mb"] = _peak_rss_mb()
        missing = [r["id"] for r in results if r.get("evidence_found") is False]
        table = format_table(agg, ks)
        print(f"{args.gold}: {len(scored)} cases, top_k={settings.top_k}"
              + (f" ({len(aside)} more, {ASIDE_TAG}, reported apart)" if aside else ""))
        print(table)
        if apart is not None:
            print(f"\n{ASIDE_TAG} ({len(aside)}): answer_accuracy {_fmt(apart['answer_accuracy'])}, refused "
                  f"{_fmt(apart['over_refusal'])}, wrong answers {_fmt(apart['wrong_answers'])}")
        comparison = ""
        if base_agg is not None:
            comparison = compare_table(agg, base_agg, ks)
            print(f"\nrag vs LlamaIndex default pipeline ({len(base_results)} answerable cases, same process, "
                  "same embedding model):")
            print(comparison)
        if missing:
            print(f"eval: evidence quotes not found in the corpus for: {', '.join(missing)}", file=sys.stderr)
        thresholds = _thresholds(assistant.answerer.min_support)
        report = {"gold": args.gold, "commit": _git_commit(), "cases": len(cases), "ks": ks,
                  "settings": {k: str(v) for k, v in vars(settings).items()},
                  "reader": {"name": assistant.reader.name, "min_support": assistant.answerer.min_support,
                             "rules": sorted(assistant.answerer.rules)}, "aggregate": agg,
                  "by_tag": {**by_tag(scored, ks), **({ASIDE_TAG: apart} if apart is not None else {})},
                  "results": results, "evidence_missing": missing,
                  "abstention_curve": abstention_curve(scored, thresholds),
                  "answer_curve": answer_curve(scored, thresholds)}
        if apart is not None:
            report["aside"] = {"tag": ASIDE_TAG, "aggregate": apart}
        if base_agg is not None:
            report["baseline"] = {"pipeline": "llama-index VectorStoreIndex.from_documents, SentenceSplitter() "
                                              "defaults, same embedding model, Chroma, as_retriever()",
                                  "aggregate": base_agg, "by_tag": {t: aggregate_retrieval(
                                      [r for r in base_results if t in r["tags"]], ks)
                                      for t in sorted({t for r in base_results for t in r["tags"]})},
                                  "results": base_results}
        if args.report:
            out = Path(args.report)
            write_reports(out, report, table, comparison)
            charted = write_chart(out / "retrieval.png", agg, base_agg, ks, f"{args.gold}: {len(cases)} cases")
            curve = any(not r["answerable"] for r in results) and write_abstention_chart(
                out / "abstention.png", report["abstention_curve"], assistant.answerer.min_support,
                f"{args.gold}: abstention trade-off")
            answers = write_answer_chart(out / "answers.png", report["answer_curve"], assistant.answerer.min_support,
                                         f"{args.gold}: answered right and wrong against refused")
            charts = [name for name, made in (("retrieval.png", charted), ("abstention.png", curve),
                                              ("answers.png", answers)) if made]
            print(f"eval: wrote {out}/report.json, report.md" + "".join(f", {c}" for c in charts))
    failed = [f"{m}={agg.get(m)} < {v}" for m, v in gates.items() if agg.get(m) is None or agg[m] < v]
    if missing:
        failed.append(f"{len(missing)} gold evidence quotes are not in the corpus")
    if failed:
        print("eval: FAILED gate: " + "; ".join(failed), file=sys.stderr)
        return 3
    if gates:
        print("eval: gate passed: " + ", ".join(f"{m}>={v}" for m, v in gates.items()))
    return 0
