"""Benchmark corpora built from ../shared/data at run time, into a folder the caller owns (never the repo).

- `news`: the RealTime QA gold articles plus their search-result pages (793 pages, about 13k chunks).
- `squad`: the 35 SQuAD 2.0 dev articles (about 1.9k chunks).
- `scaled(n_chunks)`: news + squad, repeated until about n_chunks. Copy k > 0 of an article gets the id
  `<id>#k` and its paragraphs rotated by k, so chunk boundaries, texts and vectors differ from the original's.
"""

from __future__ import annotations

import json
from pathlib import Path

from evals.datasets import default_data_dir, load_dataset

CHUNKS_PER_CHAR = 1 / 640  # measured on news + squad with the default 160-token chunks (rag ingest)


def news(folder: Path, data_dir: Path | None = None) -> list[Path]:
    files, _ = load_dataset("realtimeqa", data_dir or default_data_dir(), folder, None)
    return files


def squad(folder: Path, data_dir: Path | None = None) -> list[Path]:
    files, _ = load_dataset("squad2", data_dir or default_data_dir(), folder, None)
    return files


def questions(name: str, folder: Path, data_dir: Path | None = None, limit: int = 200) -> list[str]:
    """Questions of the dataset (answerable first), for latency runs."""
    _, cases = load_dataset(name, data_dir or default_data_dir(), folder, None)
    return [c.question for c in sorted(cases, key=lambda c: not c.answerable)][:limit]


def scaled(folder: Path, n_chunks: int, data_dir: Path | None = None, records_per_file: int = 2000) -> Path:
    """A folder of JSONL files holding about n_chunks chunks in all (see the module doc for how articles are
    repeated); files of `records_per_file` articles, each well under the 50 MB file limit."""
    records = []
    for path in news(folder / "src", data_dir) + squad(folder / "src", data_dir):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = folder / f"scaled-{n_chunks}"
    out.mkdir(parents=True, exist_ok=True)
    budget = n_chunks / CHUNKS_PER_CHAR
    written, count, copy = 0.0, 0, 0
    f = None
    try:
        while written < budget:
            for r in records:
                if written >= budget:
                    break
                if count % records_per_file == 0:
                    if f is not None:
                        f.close()
                    f = (out / f"part-{count // records_per_file:04d}.jsonl").open("w", encoding="utf-8")
                assert f is not None
                paragraphs = r["text"].split("\n\n")
                k = copy % max(1, len(paragraphs))
                text = "\n\n".join(paragraphs[k:] + paragraphs[:k])
                rid = r.get("id") or r.get("url") or f"record-{count}"
                f.write(json.dumps({**r, "id": rid if copy == 0 else f"{rid}#{copy}", "text": text},
                                   ensure_ascii=False) + "\n")
                written += len(text)
                count += 1
            copy += 1
    finally:
        if f is not None:
            f.close()
    return out
