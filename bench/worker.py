"""One measured job in a fresh process, so its time and peak memory are its own; prints one JSON line.

    python -m bench.worker JOB INDEX_DIR [FILES_OR_QUESTIONS_JSON]

Jobs: ingest / baseline-ingest (a corpus into an index), read (records of files, no index), first-answer / baseline-first-answer (process start to
the first answer over a built index), queries / baseline-queries (latency of each question, warm).
`spawn()` runs a job from a bench script and adds `wall_seconds`, the whole process as the parent saw it.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()


def memory_mb(field: str = "VmHWM", pid: int | str = "self") -> float:
    """A memory figure of a process from /proc/<pid>/status, in MB: VmHWM its peak RSS, VmRSS its RSS now.

    The peak is not getrusage's ru_maxrss: Linux keeps that across execve, so a worker forked from a larger
    parent would report the parent's size. Without /proc (not Linux), this process's ru_maxrss stands in."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_rss_mb() -> float:
    """This process's peak RSS."""
    return memory_mb("VmHWM")


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def baseline_embed() -> Any:
    """LlamaIndex's default pipeline embeds with the same MiniLM on torch."""
    from rag.index.llama_embedding import SentenceEmbedding

    return SentenceEmbedding(backend="torch")


def run(job: str, index: Path, arg: Any) -> dict[str, Any]:
    if job == "ingest":
        from rag import Assistant

        assistant = Assistant(index_dir=index)
        assistant.chunk_encoder.encode(["warm-up"])  # the model load is start-up, not ingest
        importlib.import_module("ingest.pipeline")  # LlamaIndex with it (~2 s): the baseline's is before its clock

        started = time.perf_counter()
        report = assistant.ingest(arg, progress=False)
        return {"seconds": time.perf_counter() - started, "chunks": report.chunks,
                "documents": report.added + report.updated + report.unchanged, "embedded": report.embedded,
                "backend": assistant.chunk_encoder.backend}
    if job == "read":  # load and clean records only (no index): the memory of streaming a large file
        from ingest.load import discover, read_records

        started = time.perf_counter()
        files, _ = discover(arg)
        count = sum(1 for f in files for _ in read_records(f, 50 * 2**20))
        return {"seconds": time.perf_counter() - started, "records": count}
    if job == "baseline-ingest":
        from evals.baseline import LlamaIndexBaseline

        embed = baseline_embed()
        embed.encode(["warm-up"])
        baseline = LlamaIndexBaseline(index, embed)
        baseline.build(arg)
        return {"seconds": baseline.ingest_seconds, "chunks": baseline.chunks}
    if job == "first-answer":
        from rag import Assistant

        answer = Assistant(index_dir=index).ask(arg)
        return {"seconds": time.perf_counter() - STARTED, "answered": not answer.abstained}
    if job == "baseline-first-answer":
        nodes = _baseline_retriever(index).retrieve(arg)
        return {"seconds": time.perf_counter() - STARTED, "answered": bool(nodes)}
    if job in ("queries", "baseline-queries"):
        if job == "queries":
            from rag import Assistant

            ask: Any = Assistant(index_dir=index).ask
        else:
            ask = _baseline_retriever(index).retrieve
        ask("warm-up question about the news")
        return {"latencies_ms": [_timed_ms(ask, question) for question in arg]}
    raise SystemExit(f"unknown job {job!r}")


def _timed_ms(fn: Any, arg: Any) -> float:
    started = time.perf_counter()
    fn(arg)
    return (time.perf_counter() - started) * 1000


def _baseline_retriever(index: Path) -> Any:
    """The baseline index as a user reopens it: VectorStoreIndex.from_vector_store on the persisted Chroma."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(path=str(index / "baseline-chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    store = ChromaVectorStore(chroma_collection=client.get_collection("baseline"))
    return VectorStoreIndex.from_vector_store(store, embed_model=baseline_embed()).as_retriever(similarity_top_k=5)


def spawn(job: str, index: Path, arg: Any = None, timeout_s: float = 7200) -> dict[str, Any]:
    """Run one job in a fresh interpreter; its JSON result plus `wall_seconds`."""
    repo = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "bench.worker", job, str(index)] + ([json.dumps(arg)] if arg is not None else [])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=repo, env=env, timeout=timeout_s)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{job} failed ({done.returncode}): {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def table(rows: list[tuple[str, Any, Any]], unit_digits: int = 1) -> str:
    """| metric | project | baseline | ratio (project / baseline) |"""
    lines = ["| metric | project | LlamaIndex default | ratio |", "|---|---|---|---|"]
    for name, ours, base in rows:
        ratio = f"{ours / base:.2f}" if isinstance(ours, (int, float)) and isinstance(base, (int, float)) and base \
            else "n/a"
        fmt = lambda v: f"{v:.{unit_digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
        lines.append(f"| {name} | {fmt(ours)} | {fmt(base)} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    job, index = sys.argv[1], Path(sys.argv[2])
    arg = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    result = run(job, index, arg)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
