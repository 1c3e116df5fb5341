"""The PNG charts of an eval report (matplotlib, the `eval` extra; without it the charts are skipped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _style(ax: Any, xlabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title)


def _save(plt: Any, fig: Any, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_chart(path: Path, ours: dict[str, Any], base: dict[str, Any] | None, ks: list[int], title: str) -> bool:
    """hit@k and answer-in-top-k per k for rag and the baseline, with rag's answer accuracy; False without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return False
    if all((agg or {}).get(f"hit@{k}") is None for agg in (ours, base) for k in ks):
        return False  # no answerable case: nothing to draw
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, name, label in ((axes[0], "hit", "gold article in top k (hit@k)"),
                            (axes[1], "answer_in_top", "gold answer in top-k passages")):
        for agg, system, style in ((ours, "rag", "o-"), (base, "LlamaIndex default", "s--")):
            if agg is None:
                continue
            values = [agg.get(f"{name}@{k}") for k in ks]
            if all(v is None for v in values):
                continue
            ax.plot(ks, [float("nan") if v is None else v for v in values], style, label=system)
        if name == "answer_in_top" and ours.get("answer_accuracy") is not None:
            ax.axhline(ours["answer_accuracy"], color="gray", linestyle=":", label="rag answer accuracy")
        ax.set_xticks(ks)
        _style(ax, "k", label)
    fig.suptitle(title)
    _save(plt, fig, path)
    return True


def write_abstention_chart(path: Path, curve: list[dict[str, Any]], min_support: float, title: str) -> bool:
    """Refusal recall against over-refusal as the support threshold moves, the configured one marked."""
    plt = _pyplot()
    if plt is None:
        return False
    points = [c for c in curve if c["refusal_recall"] is not None and c["over_refusal"] is not None]
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([c["over_refusal"] for c in points], [c["refusal_recall"] for c in points], "-", color="tab:blue")
    current = min(points, key=lambda c: abs(c["threshold"] - min_support))
    ax.plot([current["over_refusal"]], [current["refusal_recall"]], "o", color="tab:red",
            label=f"min_support = {min_support:g}")
    for c in points[:: max(1, len(points) // 6)]:
        ax.annotate(f"{c['threshold']:.2f}", (c["over_refusal"], c["refusal_recall"]), fontsize=7,
                    textcoords="offset points", xytext=(4, -8))
    ax.set_ylabel("refusal recall (should-refuse questions refused)")
    ax.set_xlim(0, 1)
    _style(ax, "over-refusal (answerable questions refused)", title)
    _save(plt, fig, path)
    return True


def write_answer_chart(path: Path, curve: list[dict[str, Any]], min_support: float, title: str) -> bool:
    """Answered right and answered wrong against the share refused, as the support threshold moves (over the
    answerable questions), the configured threshold marked."""
    plt = _pyplot()
    points = [c for c in curve if c["refused"] is not None]
    if plt is None or not points:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    refused = [c["refused"] for c in points]
    ax.plot(refused, [c["right"] for c in points], "-", color="tab:green", label="answered right")
    ax.plot(refused, [c["wrong"] for c in points], "-", color="tab:red", label="answered wrong")
    current = min(points, key=lambda c: abs(c["threshold"] - min_support))
    ax.plot([current["refused"]] * 2, [current["right"], current["wrong"]], "o", color="black",
            label=f"min_support = {min_support:g}")
    ax.set_ylabel("share of answerable questions")
    ax.set_xlim(0, 1)
    _style(ax, "refused (answerable questions)", title)
    ax.legend(loc="upper right")
    _save(plt, fig, path)
    return True
