"""Per-case scoring (retrieval, answer, citations, abstention) and aggregation, SQuAD-style normalisation."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from evals.gold import Evidence, GoldCase
from rag.serialize import answer_to_dict
from rag.types import Answer

_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | set("“”‘’«»–—…")


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces.

    >>> normalize("The  “Ukraine 24” channel!")
    'ukraine 24 channel'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES_RE.sub(" ", text).split())


def contains(haystack: str, needle: str) -> bool:
    n = normalize(needle)
    return bool(n) and f" {n} " in f" {normalize(haystack)} "


def token_f1(prediction: str, gold: str) -> float:
    p, g = normalize(prediction).split(), normalize(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if not p or not g or same == 0:
        return float(p == g)
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def answer_correct(text: str, case: GoldCase) -> bool:
    if case.answers_all:
        return all(contains(text, a) for a in case.answers_all)
    return any(contains(text, a) for a in case.answers)


def _doc_matches(doc_id: str, url: str, evidence: Evidence) -> bool:
    if evidence.url and url and evidence.url == url:
        return True
    if not evidence.doc_id:
        return False
    return doc_id == evidence.doc_id or doc_id.endswith("/" + evidence.doc_id)


def _quote_overlaps(quote: str, evidence: Evidence) -> bool:
    if not evidence.quote:
        return False
    a, b = normalize(quote), normalize(evidence.quote)
    return bool(a and b) and (a in b or b in a)


def score_case(case: GoldCase, answer: Answer, ranked: Sequence[Any], articles: Mapping[str, Any],
               ks: Iterable[int]) -> dict[str, Any]:
    """One case's results. `ranked` are passages for the retrieval metrics (up to max k)."""
    result: dict[str, Any] = {"id": case.id, "question": case.question, "answerable": case.answerable,
                              "tags": list(case.tags), "abstained": answer.abstained,
                              "short_answer": answer.short_answer, "latency_ms": answer.timings_ms.get("total", 0.0),
                              "support": answer.support, "response": answer_to_dict(answer, passages=False)}
    spans_ok = [articles[c.doc_id].text[c.start_char:c.end_char] == c.quote if c.doc_id in articles else False
                for c in answer.citations]
    result["citations"] = len(answer.citations)
    result["spans_exact"] = sum(spans_ok)
    if not case.answerable:
        return result
    aliases = case.answers_all or case.answers
    result["correct"] = (not answer.abstained) and answer_correct(answer.text, case)
    if answer.short_answer:
        result["short_em"] = max(float(normalize(answer.short_answer) == normalize(a)) for a in aliases)
        result["short_f1"] = max(token_f1(answer.short_answer, a) for a in aliases)
    supporting = [
        any(contains(c.quote, a) for a in aliases) or any(_quote_overlaps(c.quote, e) for e in case.evidence)
        for c in answer.citations
    ]
    result["citations_supporting"] = sum(supporting)
    result["cited_support"] = any(supporting)
    result.update(score_retrieval(case, ranked, ks))
    return result


def score_retrieval(case: GoldCase, ranked: Sequence[Any], ks: Iterable[int]) -> dict[str, Any]:
    """Where the gold document and the gold answer string first appear among `ranked` (passages with
    doc_id, url and text), as ranks and as hit@k / answer_in_top@k / recall@k of the evidence quotes."""
    aliases = case.answers_all or case.answers
    # A passage standing for near-identical copies (rag/retrieve/dedupe.py) matches when any copy is a gold document.
    doc_rank = next((i for i, p in enumerate(ranked, 1)
                     if any(_doc_matches(d.doc_id, d.url, e) for d in (p, *getattr(p, "duplicates", ()))
                            for e in case.evidence)), None)
    ans_rank = next((i for i, p in enumerate(ranked, 1) if any(contains(p.text, a) for a in aliases)), None)
    result: dict[str, Any] = {"doc_rank": doc_rank, "answer_rank": ans_rank,
                              "passage_chars": round(sum(len(p.text) for p in ranked) / len(ranked)) if ranked else 0}
    quotes = [e for e in case.evidence if e.quote]
    for k in ks:
        result[f"hit@{k}"] = doc_rank is not None and doc_rank <= k
        result[f"answer_in_top@{k}"] = ans_rank is not None and ans_rank <= k
        if quotes:
            found = sum(any(_quote_overlaps(p.text, e) or contains(p.text, e.quote) for p in ranked[:k]) for e in quotes)
            result[f"recall@{k}"] = found / len(quotes)
    return result


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def aggregate(results: Sequence[Mapping[str, Any]], ks: Iterable[int]) -> dict[str, Any]:
    answerable = [r for r in results if r["answerable"]]
    refuse = [r for r in results if not r["answerable"]]
    refused = [r for r in results if r["abstained"]]
    total_citations = sum(r["citations"] for r in results)
    agg: dict[str, Any] = {
        "cases": len(results), "answerable": len(answerable), "should_refuse": len(refuse),
        "answer_accuracy": _mean([float(r["correct"]) for r in answerable]),
        "short_em": _mean([r["short_em"] for r in answerable if "short_em" in r]),
        "short_f1": _mean([r["short_f1"] for r in answerable if "short_f1" in r]),
        # Over every answerable case, one without a short answer counting 0 (short_f1 is over those with one).
        "short_f1_all": _mean([r.get("short_f1", 0.0) for r in answerable]),
        "short_rate": _mean([float("short_f1" in r) for r in answerable]),
        "citation_precision": (round(sum(r.get("citations_supporting", 0) for r in answerable)
                                     / max(1, sum(r["citations"] for r in answerable)), 4) if answerable else None),
        "citation_recall": _mean([float(r["cited_support"]) for r in answerable]),
        "span_exact": round(sum(r["spans_exact"] for r in results) / total_citations, 4) if total_citations else 1.0,
        "refusal_precision": round(sum(not r["answerable"] for r in refused) / len(refused), 4) if refused else None,
        "refusal_recall": _mean([float(r["abstained"]) for r in refuse]),
        "over_refusal": _mean([float(r["abstained"]) for r in answerable]),
        # Answered, and wrong: the gold answer is not in the answer (the answer a reader would be misled by).
        "wrong_answers": _mean([float(not r["abstained"] and not r["correct"]) for r in answerable]),
        "latency_p50_ms": _percentile([r["latency_ms"] for r in results], 0.5),
        "latency_p95_ms": _percentile([r["latency_ms"] for r in results], 0.95),
        # With an LLM backend: the share of answers where the extractive answer stood in (backend failed, or no
        # generated sentence was supported), and generated sentences dropped by verification per question.
        "fallback_rate": _mean([float(bool(r.get("fallback"))) for r in results]),
        "dropped_per_case": _mean([float(r.get("dropped", 0)) for r in results]),
    }
    agg.update(aggregate_retrieval(answerable, ks))
    return agg


def aggregate_retrieval(answerable: Sequence[Mapping[str, Any]], ks: Iterable[int]) -> dict[str, Any]:
    """MRR of the gold document and hit@k, answer_in_top@k, recall@k over answerable cases' retrieval results."""
    agg: dict[str, Any] = {"mrr": _mean([1.0 / r["doc_rank"] if r.get("doc_rank") else 0.0
                                         for r in answerable if "doc_rank" in r])}
    for k in ks:
        for name in ("hit", "answer_in_top", "recall"):
            agg[f"{name}@{k}"] = _mean([float(r[f"{name}@{k}"]) for r in answerable if f"{name}@{k}" in r])
    sizes = [r["passage_chars"] for r in answerable if r.get("passage_chars")]
    agg["passage_chars_mean"] = round(sum(sizes) / len(sizes), 1) if sizes else None
    if any("retrieve_ms" in r for r in answerable):
        agg["retrieve_p50_ms"] = _percentile([r["retrieve_ms"] for r in answerable if "retrieve_ms" in r], 0.5)
        agg["retrieve_p95_ms"] = _percentile([r["retrieve_ms"] for r in answerable if "retrieve_ms" in r], 0.95)
    return agg


def abstention_curve(results: Sequence[Mapping[str, Any]], thresholds: Iterable[float]) -> list[dict[str, float | None]]:
    """Refusal recall (should-refuse cases) and over-refusal (answerable ones) if answers below each support
    threshold were refused: the trade-off `min_support` is chosen on."""
    refuse = [r["support"] for r in results if not r["answerable"]]
    answer = [r["support"] for r in results if r["answerable"]]
    curve = []
    for t in thresholds:
        curve.append({"threshold": round(t, 3),
                      "refusal_recall": _mean([float(s < t) for s in refuse]),
                      "over_refusal": _mean([float(s < t) for s in answer])})
    return curve


def answer_curve(results: Sequence[Mapping[str, Any]], thresholds: Iterable[float]) -> list[dict[str, float | None]]:
    """Over the answerable cases, what refusing every answer below each support threshold would give: the share
    refused, answered right and answered wrong (accuracy against refusals; the three add up to 1)."""
    answerable = [r for r in results if r["answerable"]]
    curve = []
    for t in thresholds:
        kept = [not r["abstained"] and r["support"] >= t for r in answerable]
        curve.append({"threshold": round(t, 3), "refused": _mean([float(not k) for k in kept]),
                      "right": _mean([float(k and r["correct"]) for k, r in zip(kept, answerable, strict=True)]),
                      "wrong": _mean([float(k and not r["correct"]) for k, r in zip(kept, answerable, strict=True)])})
    return curve


def by_tag(results: Sequence[Mapping[str, Any]], ks: Iterable[int]) -> dict[str, dict[str, Any]]:
    tags = sorted({t for r in results for t in r["tags"]})
    return {t: aggregate([r for r in results if t in r["tags"]], ks) for t in tags}
