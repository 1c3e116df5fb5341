"""Fit what each reader takes from data, on questions the evaluation never scores as held out, through the
Reader interface (`Assistant.retrieve`).

    python -m evals.tune [--reader trained|lexical] [--answerable 600] [--unanswerable 300] [--write]

The trained reader (`--reader trained`, the default): how many sentences to read (best sentence right and
latency by the number read), its refusal threshold (the sweep below), and the margin within which a second
sentence joins the answer; `--write` stores them in the model folder's calibration.json (RAG_READER_MODEL, else
models/reader). No weight of the model is fitted here: it is trained on SQuAD 1.1 only (evals/train_reader.py).

The lexical reader (`--reader lexical`):
1. Ingest the 35 SQuAD articles; for each tuning question take the candidate pool (hybrid retrieval,
   duplicates collapsed) and the features of every sentence in it (rag/reading/rerank.py).
2. Grid-search the weights for the share of answerable questions whose best sentence holds a gold answer.
3. Ablation: that share with each signal's weight set to zero.
4. Abstention: a logistic model (rag/reading/abstain.py) of answerable vs unanswerable over the best sentence's
   signals, its refusal/over-refusal curve by 2-fold cross-validation, and the highest `min_support` whose
   over-refusal stays within the bound; then the coefficients refitted on all the tuning questions.
5. With the trained models (RAG_SHORT_ANSWERS=span): how many of the ranker's best sentences they re-order and
   with what weights on the reader model's logit and the span head's best-span score (the reader model's own, or
   RAG_SPAN_MODEL's; `MODEL_READS`, `MODEL_WEIGHT`, `SPAN_WEIGHT`), for the share whose best sentence holds a gold
   answer (SQuAD and the news weeks counted alike, as for the trained reader).
The weights and threshold it prints are the defaults in rag/reading/rerank.py and rag/reading/lexical.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from evals.datasets import ASIDE_TAG, default_data_dir, multihop, realtimeqa_weeks, squad2_tuning
from evals.metrics import contains
from rag.config import Settings
from rag.reading.abstain import SIGNALS, signals
from rag.reading.rerank import DEFAULT_WEIGHTS, FEATURES, QUESTION_PENALTY, TYPE_PENALTY
from rag.text.words import is_question
from rag.types import Filters

GRID: dict[str, tuple[float, ...]] = {
    "dense": (0.3, 0.4, 0.5, 0.6, 0.7),
    "coverage": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    "context": (0.0, 0.05, 0.1, 0.2, 0.3),
    "names": (0.0, 0.05, 0.1, 0.2),
    "rank": (0.0, 0.02, 0.05, 0.1),
    "type": (0.0,),
    "recency": (DEFAULT_WEIGHTS["recency"],),  # not fitted here: rag/reading/rerank.py says why (evals.tune_time)
}


def collect(assistant: Any, cases: list[Any]) -> list[dict[str, Any]]:
    """Per question: the feature matrix of its candidate sentences, which hold a gold answer, the type penalty."""
    from tqdm import tqdm

    from rag.text.words import answer_type

    reader = assistant.reader
    reader.model_weight = reader.span_weight = 0.0  # the ranker's own order; the models' re-ordering is fitted on it
    rows = []
    for case in tqdm(cases, desc="features", unit="q", disable=not sys.stderr.isatty()):
        found = assistant.retrieve(case.question, filters=_filters(case))
        ranked = list(found.reading.sentences)
        if not ranked:
            rows.append({"case": case, "X": np.zeros((0, len(FEATURES))), "y": np.zeros(0, bool), "penalty": 0.0,
                         "asks": np.zeros(0), "ranked": [], "qweights": {}, "logits": np.zeros(0),
                         "span_scores": np.zeros(0)})
            continue
        logits, span_scores = np.zeros(0), np.zeros(0)
        if reader.spans is not None:
            top = ranked[:max(MODEL_READS_GRID)]
            logits = np.array([r.logit for r in reader.spans.read_sentences(found.query, top, found.articles)])
            span_scores = np.zeros(len(top))
            if reader.short is not None:
                span_scores = np.array([r.span_score for r in reader.short.read_sentences(found.query, top,
                                                                                           found.articles)])
        X = np.array([c.features for c in ranked], dtype=np.float64)
        y = np.array([case.answerable and any(contains(c.text, a) for a in case.answers) for c in ranked])
        rows.append({"case": case, "X": X, "y": y, "penalty": TYPE_PENALTY[answer_type(case.question)],
                     "asks": np.array([is_question(c.text) for c in ranked], dtype=np.float64), "ranked": ranked,
                     "qweights": assistant.ranker.question_weights(case.question), "logits": logits,
                     "span_scores": span_scores})
    return rows


MODEL_READS_GRID = (2, 3, 4, 6, 8)
MODEL_WEIGHT_GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5)
SPAN_WEIGHT_GRID = (0.0, 0.02, 0.05, 0.1, 0.2)


def report_model_order(rows: list[dict[str, Any]]) -> None:
    """Best sentence right when the models re-order the ranker's best n by score + w x logit + v x span score."""
    parts = {name: [r for r in rows if r["set"] == name and r["case"].answerable and len(r["logits"])]
             for name in ("squad2", "news")}
    if not parts["squad2"]:
        return
    print("\nthe models re-ordering the ranker's best n (score + w x logit + v x span score): best sentence right, "
          "squad2 / news")
    best_of: dict[int, tuple[float, float, float]] = {}  # n -> (overall, w, v)
    for n in MODEL_READS_GRID:
        for v in SPAN_WEIGHT_GRID:
            cells = []
            for w in MODEL_WEIGHT_GRID:
                shares = []
                for part in parts.values():
                    right = [r["y"][int(np.argmax(np.array([c.score for c in r["ranked"][:n]]) + w * r["logits"][:n]
                                                  + v * r["span_scores"][:n]))] for r in part]
                    shares.append(float(np.mean(right)) if right else 0.0)
                cells.append(f"w={w}: {shares[0]:.3f}/{shares[1]:.3f}")
                overall = round((shares[0] + shares[1]) / 2, 4)  # SQuAD and the news weeks alike
                if overall > best_of.get(n, (-1.0, 0.0, 0.0))[0]:
                    best_of[n] = (overall, w, v)
            print(f"  n={n} v={v}  " + "  ".join(cells))
    # The fewest sentences read whose best weights are within half a point of the best overall (latency).
    top = max(b[0] for b in best_of.values())
    n = min(k for k, b in best_of.items() if b[0] >= top - 0.005)
    print(f"best: MODEL_READS = {n}, MODEL_WEIGHT = {best_of[n][1]}, SPAN_WEIGHT = {best_of[n][2]} "
          f"({best_of[n][0]:.3f}; MODEL_WEIGHT stays at 0.02 or under: rag/reading/lexical.py says why)")


def _filters(case: Any) -> Filters | None:
    """The case as the evaluation asks it: as of its date when it has one."""
    return Filters(as_of=case.as_of) if case.as_of else None


def rescore(row: dict[str, Any], w: np.ndarray) -> np.ndarray:
    """A question's sentence scores under weights w: SentenceRanker.score's sum, with its type and question
    penalties."""
    return (row["X"] @ w - row["penalty"] * (1.0 - row["X"][:, FEATURES.index("type")])
            - QUESTION_PENALTY * row["asks"])


def best_scores(rows: list[dict[str, Any]], w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(support score of each question's best sentence, does that sentence hold a gold answer)."""
    support = np.full(len(rows), -9.0)
    right = np.zeros(len(rows), bool)
    for i, r in enumerate(rows):
        if len(r["y"]) == 0:
            continue
        scores = rescore(r, w)
        j = int(np.argmax(scores))
        support[i], right[i] = scores[j], r["y"][j]
    return support, right


def fit(rows: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
    answerable = [r for r in rows if r["case"].answerable]
    best: tuple[float, dict[str, float]] = (-1.0, {})
    for values in itertools.product(*(GRID[f] for f in FEATURES)):
        w = np.array(values)
        accuracy = float(best_scores(answerable, w)[1].mean())
        if accuracy > best[0]:
            best = (accuracy, dict(zip(FEATURES, values, strict=True)))
    return best[1], best[0]


def abstention_signals(rows: list[dict[str, Any]], w: np.ndarray) -> np.ndarray:
    """Each question's abstention signals (rag/reading/abstain.py) with its sentences re-scored under weights w."""
    out = []
    for r in rows:
        ranked = r["ranked"]
        if ranked:
            scores = rescore(r, w)
            order = np.argsort(-scores)
            ranked = [replace(ranked[i], score=float(scores[i])) for i in order]
        values = signals(r["qweights"], r["case"].question, ranked)
        out.append([values[k] for k in SIGNALS])
    return np.array(out, dtype=np.float64)


def logistic_weights(S: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 3000) -> np.ndarray:
    """Logistic regression by gradient descent on standardised signals: [bias, coefficients...] on the raw scale."""
    mu, sd = S.mean(axis=0), S.std(axis=0) + 1e-9
    Z = (S - mu) / sd
    coef, bias = np.zeros(S.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(Z @ coef + bias)))
        coef -= 0.5 * (Z.T @ (p - y) / len(y) + l2 * coef)
        bias -= 0.5 * float(np.mean(p - y))
    return np.concatenate([[bias - np.sum(coef * mu / sd)], coef / sd])


def cross_validated(S: np.ndarray, y: np.ndarray) -> np.ndarray:
    """p of each question from a logistic fitted on the other half (2 folds, alternating questions)."""
    folds = np.arange(len(y)) % 2
    p = np.zeros(len(y))
    for k in (0, 1):
        w = logistic_weights(S[folds != k], y[folds != k])
        p[folds == k] = 1.0 / (1.0 + np.exp(-(w[0] + S[folds == k] @ w[1:])))
    return p


def fit_logistic(S: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The abstention model's coefficients by signal name (rag/reading/abstain.py's DEFAULT_COEFFICIENTS shape)."""
    w = logistic_weights(S, y)
    out = {"bias": round(float(w[0]), 4)}
    out.update({k: round(float(v), 4) for k, v in zip(SIGNALS, w[1:], strict=True)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", choices=("trained", "lexical"), default="trained")
    parser.add_argument("--answerable", type=int, default=600)
    parser.add_argument("--unanswerable", type=int, default=300)
    parser.add_argument("--max-over-refusal", type=float, default=0.10)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--index", type=Path, help="keep the SQuAD index here between runs (default: a temp dir)")
    parser.add_argument("--news-index", type=Path,
                        help="keep the index of RealTime QA's 2023 pages here (default: a temp dir)")
    parser.add_argument("--multihop-index", type=Path,
                        help="keep the index of RealTime QA's 2022 pages (MultiHop-RAG's corpus) here")
    parser.add_argument("--cache", type=Path, help="keep the collected features in this file and reuse them")
    parser.add_argument("--write", action="store_true",
                        help="trained reader: write the fitted values to calibration.json in the model's folder "
                             "(RAG_READER_MODEL, else models/reader)")
    args = parser.parse_args(argv)
    from rag.reading.trained import default_model_dir

    settings = Settings.from_env()  # RAG_READER_MODEL: the trained reader's folder (default models/reader)
    if args.cache and args.cache.exists():
        with args.cache.open("rb") as f:
            rows = pickle.load(f)
    else:
        rows = _collect_all(args, settings, collect_trained if args.reader == "trained" else collect)
        if args.cache:
            with args.cache.open("wb") as f:
                pickle.dump(rows, f)
    if args.reader == "lexical":
        return report(rows, args.max_over_refusal)
    folder = Path(settings.reader_model) if settings.reader_model else default_model_dir()
    fitted = report_trained(rows, args.max_over_refusal, folder)
    if args.write:
        path = folder / "calibration.json"
        path.write_text(json.dumps(fitted, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


def _collect_all(args: argparse.Namespace, settings: Settings, collector: Any) -> list[dict[str, Any]]:
    from rag.assistant import Assistant

    settings = settings.with_overrides(reader=args.reader)
    with tempfile.TemporaryDirectory(prefix="rag-tune-") as tmp:
        index = args.index or Path(tmp) / "index"
        files, cases = squad2_tuning(args.data, index / "dataset", args.answerable, args.unanswerable)
        assistant = Assistant(settings=settings.with_overrides(index_dir=index))
        assistant.ingest([str(f) for f in files], progress=False)
        rows = collector(assistant, cases)
        for r in rows:
            r["set"] = "squad2"
        # News: RealTime QA's 2023 weeks (the questions whose answer is in one of their own pages) against those
        # weeks' pages, each asked as of its quiz date as the evaluation does; and the even half of MultiHop-RAG's
        # late-2023 questions against the 2022 pages (all should be refused: the 2023 pages may hold their answers).
        news_index = args.news_index or Path(tmp) / "news"
        news_files, news_cases = realtimeqa_weeks(args.data, news_index / "dataset", "2023")
        news_cases = [c for c in news_cases if ASIDE_TAG not in c.tags]
        news = Assistant(settings=settings.with_overrides(index_dir=news_index))
        news.ingest([str(f) for f in news_files], progress=False)
        for r in collector(news, news_cases):
            r["set"] = "news"
            rows.append(r)
        pages_2022 = args.multihop_index or Path(tmp) / "multihop"
        multihop_files, multihop_cases = multihop(args.data, pages_2022 / "dataset")
        refuse = Assistant(settings=settings.with_overrides(index_dir=pages_2022))
        refuse.ingest([str(f) for f in multihop_files], progress=False)
        for r in collector(refuse, [c for c in multihop_cases if "tuning" in c.tags]):
            r["set"] = "news"
            rows.append(r)
    return rows


# -- the trained reader ------------------------------------------------------------------------------------
MAX_READ = 32
PRIOR_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
READ_COUNTS = (4, 8, 12, 16, 24, 32)
MARGINS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)


def collect_trained(assistant: Any, cases: list[Any]) -> list[dict[str, Any]]:
    """Per question: the model's logit for each of the first MAX_READ sentences in pre-score order, whether
    each holds a gold answer, the short answer of each, and the time the model took to read them."""
    from tqdm import tqdm

    reader = assistant.reader
    reader.sentences_read = MAX_READ
    rows = []
    for case in tqdm(cases, desc="reading", unit="q", disable=not sys.stderr.isatty()):
        before = reader.model_seconds
        found = assistant.retrieve(case.question, filters=_filters(case))  # reads the first MAX_READ
        seconds = reader.model_seconds - before
        pre = reader.ranker.score(found.question, found.pool, found.articles, found.query, dense=False)[:MAX_READ]
        read = reader.read_sentences(found.query, pre, found.articles) if pre else []  # from its cache
        rows.append({"case": case, "logits": np.array([r[0] for r in read]), "pre": pre, "query": found.query,
                     "qweights": reader.ranker.question_weights(found.query),
                     "y": np.array([case.answerable and any(contains(c.text, a) for a in case.answers) for c in pre]),
                     "seconds": seconds, "read": len(pre)})
    return rows


SUPPORT_SIGNALS = ("logit", "lead", "missing_rare", "missing_number", "type", "swapped", "coverage", "context")


def support_signals(rows: list[dict[str, Any]], n_read: int) -> np.ndarray:
    """Per question: the inputs of rag.reading.trained.support_probability for the best of the first n_read."""
    from rag.reading.trained import support_inputs

    out = []
    for r in rows:
        logits = r["logits"][:n_read]
        if not len(logits):
            out.append([-10.0] + [0.0] * (len(SUPPORT_SIGNALS) - 1))
            continue
        order = np.argsort(-logits)
        ranked = [r["pre"][i] for i in order]
        values = support_inputs([float(logits[i]) for i in order], signals(r["qweights"], r["query"], ranked))
        out.append([values[k] for k in SUPPORT_SIGNALS])
    return np.array(out, dtype=np.float64)


def _p(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def report_trained(rows: list[dict[str, Any]], max_over_refusal: float, folder: Path) -> dict[str, Any]:
    """Print the trade-offs on the tuning questions and return the fitted calibration."""
    from rag.reading.trained import Calibration

    answerable = [r for r in rows if r["case"].answerable]
    for name in ("squad2", "news"):
        part = [r for r in rows if r["set"] == name]
        yes = [r for r in part if r["case"].answerable]
        print(f"tuning {name}: {len(yes)} answerable, {len(part) - len(yes)} should refuse")
    # The model's logit plus w x the cheap lexical pre-score (coverage, context, names, rank, type): the weight
    # that puts a gold sentence first most often, over all MAX_READ sentences.
    raw = {id(r): r["logits"] for r in rows}
    print("\nprior weight: best sentence right (squad2, news)")
    prior_right = {}
    for w in PRIOR_WEIGHTS:
        shares: list[float] = []
        for name in ("squad2", "news"):
            part = [r for r in answerable if r["set"] == name and len(r["y"])]
            scores = [raw[id(r)] + w * np.array([c.score for c in r["pre"]]) for r in part]
            shares.append(float(np.mean([r["y"][int(np.argmax(z))] for r, z in zip(part, scores, strict=True)])))
        prior_right[w] = (shares[0] + shares[1]) / 2  # SQuAD and the news weeks alike
        print(f"  {w:>4}   {shares[0]:.3f} / {shares[1]:.3f}")
    prior = max(PRIOR_WEIGHTS, key=lambda w: (round(prior_right[w], 3), -w))
    print(f"prior weight {prior}")
    rows = [{**r, "logits": r["logits"] + prior * np.array([c.score for c in r["pre"]])} for r in rows]
    answerable = [r for r in rows if r["case"].answerable]
    print("\nsentences read: gold in a read sentence / best sentence right (squad2, news) / model ms a question")
    best_right: dict[int, float] = {}
    for n in READ_COUNTS:
        cells = []
        for name in ("squad2", "news"):
            part = [r for r in answerable if r["set"] == name and len(r["y"])]
            within = np.mean([r["y"][:n].any() for r in part]) if part else float("nan")
            right = np.mean([r["y"][int(np.argmax(r["logits"][:n]))] for r in part]) if part else float("nan")
            cells.append(f"{within:.3f} / {right:.3f}")
            if name == "squad2":
                best_right[n] = float(right)
        ms = np.mean([r["seconds"] * 1000 * min(n, r["read"]) / max(1, r["read"]) for r in rows])
        print(f"  {n:>3}   {cells[0]:<16} {cells[1]:<16} ~{ms:.0f} ms")
    # The fewest sentences whose best-sentence accuracy is within half a point of the most read.
    top = max(best_right.values())
    n_read = min(n for n, v in best_right.items() if v >= top - 0.005)
    support = np.array([float(_p(r["logits"][:n_read]).max()) if len(r["logits"]) else 0.0 for r in rows])
    right = np.array([bool(r["y"][int(np.argmax(r["logits"][:n_read]))]) if len(r["y"]) else False for r in rows])
    thresholds = np.round(np.arange(0.05, 0.96, 0.05), 2)
    chosen = sweep(f"trained reader, {n_read} sentences read: p(best sentence answers)", support, thresholds, rows,
                   right, max_over_refusal)
    # The model's p combined with a few lexical signals of the best sentence (a logistic fitted here, 2-fold
    # cross-validated for the curve): kept only if it makes more right decisions than the p alone.
    S = support_signals(rows, n_read)
    y = np.array([r["case"].answerable for r in rows], dtype=np.float64)
    combined = sweep("model p with lexical signals (cross-validated)", cross_validated(S, y), thresholds, rows,
                     right, max_over_refusal)
    coefficients: dict[str, float] = {}
    if combined and (not chosen or combined[0] > chosen[0] + UTILITY_TIE):
        weights = logistic_weights(S, y)
        coefficients = {"bias": round(float(weights[0]), 4)}
        coefficients.update({k: round(float(v), 4) for k, v in zip(SUPPORT_SIGNALS, weights[1:], strict=True)})
        chosen = combined
        print(f"support: the combination, coefficients {coefficients}")
    else:
        print("support: the model's p alone")
    threshold = chosen[1] if chosen else 0.5
    # A second sentence: within `margin` of the best's p. Accuracy (gold in either) against the share of cited
    # sentences holding it, over the answerable questions answered at the threshold.
    print("\nsecond sentence within margin: answer accuracy / cited sentences holding the answer (answered questions)")
    margin_rows = []
    for m in MARGINS:
        hits, cited, holding = 0, 0, 0
        answered = [r for r in answerable if len(r["logits"]) and _p(r["logits"][:n_read]).max() >= threshold]
        for r in answered:
            p = _p(r["logits"][:n_read])
            order = np.argsort(-p)
            picked = [order[0]] + [j for j in order[1:2] if p[j] >= p[order[0]] - m]
            hits += bool(r["y"][picked].any())
            cited += len(picked)
            holding += int(r["y"][picked].sum())
        accuracy, precision = hits / max(1, len(answerable)), holding / max(1, cited)
        margin_rows.append((m, accuracy, precision))
        print(f"  {m:.2f}   {accuracy:.3f} / {precision:.3f}")
    # The widest margin whose cited sentences still mostly hold the answer (0.85 of them).
    margin = max((m for m, _, precision in margin_rows if precision >= 0.85), default=0.0)
    kept = Calibration.load(folder).rules  # the rules are chosen by held-out ablation, not here
    fitted = Calibration(sentences_read=n_read, min_support=threshold, second_margin=margin,
                         next_margin=margin, rules=kept, support=coefficients, prior_weight=prior).as_dict()
    print(f"\nfitted: {fitted}")
    return fitted


UTILITY_TIE = 0.005  # right decisions per question: 5 in 1,000


def utility(refused: np.ndarray, right: np.ndarray, answerable: np.ndarray) -> float:
    """Right decisions per question: a should-refuse question refused, or an answerable one answered rightly.
    (Refusing a question that would have been answered wrongly costs nothing.)"""
    return float((refused & ~answerable).sum() + (~refused & right & answerable).sum()) / len(answerable)


def sweep(name: str, decision: np.ndarray, thresholds: np.ndarray, rows: list[dict[str, Any]], right: np.ndarray,
          max_over_refusal: float) -> tuple[float, float, str] | None:
    """Print refusal recall / over-refusal / accuracy / utility per tuning set as the threshold on `decision`
    moves; return (utility, threshold, name) of the best threshold within the over-refusal bound."""
    answerable = np.array([r["case"].answerable for r in rows])
    sets = np.array([r["set"] for r in rows])
    print(f"\n{name}: refusal recall / over-refusal / best-sentence accuracy / utility")
    print("threshold  " + "  ".join(f"{s:^30}" for s in ("squad2", "news", "all")))
    best = None
    for t in thresholds:
        refused = decision < t
        cells = []
        for part in ("squad2", "news", "all"):
            m = np.ones(len(rows), bool) if part == "all" else sets == part
            rec = float(refused[m & ~answerable].mean()) if (m & ~answerable).any() else float("nan")
            cells.append(f"{rec:.3f} / {float(refused[m & answerable].mean()):.3f} / "
                         f"{float((right & ~refused)[m & answerable].mean()):.3f} / "
                         f"{utility(refused[m], right[m], answerable[m]):.3f}")
        print(f"  {t:.2f}     " + "  ".join(f"{c:^30}" for c in cells))
        u = utility(refused, right, answerable)
        # Thresholds rise: a higher one must be clearly better (by more than UTILITY_TIE) to be preferred,
        # since it refuses more of the answerable questions for what may be noise.
        if float(refused[answerable].mean()) <= max_over_refusal and (best is None or u > best[0] + UTILITY_TIE):
            best = (u, float(t), name)
    return best


def report(rows: list[dict[str, Any]], max_over_refusal: float) -> int:
    answerable_rows = [r for r in rows if r["case"].answerable]
    for name in ("squad2", "news"):
        part = [r for r in rows if r["set"] == name]
        yes = [r for r in part if r["case"].answerable]
        print(f"tuning {name}: {len(yes)} answerable, {len(part) - len(yes)} should refuse; a gold answer is in "
              f"some pool sentence for {float(np.mean([r['y'].any() for r in yes])):.3f}")
    current = np.array([DEFAULT_WEIGHTS.get(f, 0.0) for f in FEATURES])
    print(f"current weights {dict(zip(FEATURES, current.tolist(), strict=True))}: "
          f"best sentence right {best_scores(answerable_rows, current)[1].mean():.3f}")
    weights, accuracy = fit(rows)
    print(f"fitted weights {weights}: best sentence right {accuracy:.3f}")
    w = np.array([weights[f] for f in FEATURES])
    print("ablation (signal weight set to 0):")
    for i, f in enumerate(FEATURES):
        if w[i]:
            w0 = w.copy()
            w0[i] = 0.0
            without = best_scores(answerable_rows, w0)[1].mean()
            print(f"  without {f:<9} {without:.3f} ({without - accuracy:+.3f})")

    support, right = best_scores(rows, w)
    candidates = [sweep("abstention on the best sentence's score", support, np.round(np.arange(0.2, 1.01, 0.04), 2),
                        rows, right, max_over_refusal)]
    # The logistic model: a curve from 2-fold cross-validation (each half scored by a model fitted on the
    # other), then refitted on everything for the defaults.
    S = abstention_signals(rows, w)
    y = np.array([r["case"].answerable for r in rows], dtype=np.float64)
    candidates.append(sweep("logistic abstention (cross-validated)", cross_validated(S, y),
                            np.round(np.arange(0.05, 0.96, 0.05), 2), rows, right, max_over_refusal))
    print(f"\nlogistic coefficients (all data): {fit_logistic(S, y)}")
    chosen = max((c for c in candidates if c), default=None)
    if chosen:
        print(f"best within over-refusal <= {max_over_refusal}: {chosen[2]}, threshold {chosen[1]:.2f}, "
              f"utility {chosen[0]:.3f} (right decisions per question)")
    report_model_order(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
