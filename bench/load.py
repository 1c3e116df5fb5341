"""Concurrent chat sessions against the running app on loopback: errors, right answers, latency, memory over time.

    python -m bench.load [--sessions 20] [--seconds 120] [--corpus seed|news]

Starts `app.py` on a free loopback port over a fresh index, asks every question of the seed gold set once, one at a
time, through the chat endpoint (`/ask`, what the page calls) to record the reference replies, then runs
`--sessions` chat sessions at once, each its own gradio_client session asking the gold questions in its own random
order (follow-up cases with their history) until `--seconds` are up. Every reply must equal its reference (no
cross-talk, nothing dropped under load); the app's RSS is sampled every second. Bounded: at most 50 sessions and
600 seconds. `make load` runs the default: 20 sessions for 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.worker import free_port, memory_mb, percentile, spawn

REPO = Path(__file__).resolve().parent.parent
MAX_SESSIONS, MAX_SECONDS = 50, 600


def _reply(history: list[dict[str, Any]]) -> str:
    """The last assistant message as text, with the per-session turn number taken out of citation anchors."""
    from app import _message_text

    return re.sub(r"#src-\d+-", "#src-N-", re.sub(r'id="src-\d+-', 'id="src-N-', _message_text(history[-1]["content"])))


def _messages(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """Earlier turns as Gradio 6 chat messages (content is a list of typed parts)."""
    out: list[dict[str, Any]] = []
    for question, answer in pairs:
        out += [{"role": "user", "content": [{"type": "text", "text": question}]},
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
    return out


@dataclass
class _Results:
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _session(url: str, cases: list[Any], reference: dict[str, str], stop_at: float, seed: int,
             results: _Results) -> None:
    from gradio_client import Client

    rng = random.Random(seed)
    client = Client(url, verbose=False)
    while time.monotonic() < stop_at:
        case = rng.choice(cases)
        started = time.perf_counter()
        try:
            _, history, _ = client.predict(case.question, _messages(case.history), 5, [], "", "", "extractive",
                                           api_name="/ask")
            reply = _reply(history)
        except Exception as exc:  # every failure is counted and reported, none stops the run
            with results.lock:
                results.errors.append(f"{case.id}: {exc.__class__.__name__}: {exc}")
            continue
        elapsed = time.perf_counter() - started
        with results.lock:
            results.latencies_s.append(elapsed)
            if reply != reference[case.id]:
                results.mismatches.append(case.id)


def run_load(sessions: int, seconds: float, corpus: str) -> dict[str, Any]:

    from evals.gold import load_gold

    cases = load_gold(REPO / "evals" / "gold" / "seed.jsonl")
    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        index = Path(tmp) / "index"
        files = [str(REPO / "corpus")]
        if corpus == "news":
            from bench.corpus import news

            files += [str(f) for f in news(Path(tmp) / "news")]
        spawn("ingest", index, files)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
        env.pop("RAG_HOST", None)
        with open(Path(tmp) / "app.log", "wb") as log:
            app = subprocess.Popen([sys.executable, "app.py", "--index", str(index), "--port", str(port)],
                                   cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            client = _wait_for(url, app)
            reference = {}
            for case in cases:  # one at a time: what each question gets with nobody else around
                _, history, _ = client.predict(case.question, _messages(case.history), 5, [], "", "", "extractive",
                                               api_name="/ask")
                reference[case.id] = _reply(history)
            rss: list[tuple[float, float]] = []
            results = _Results()
            started = time.monotonic()
            stop_at = started + seconds
            threads = [threading.Thread(target=_session, args=(url, cases, reference, stop_at, i, results),
                                        daemon=True) for i in range(sessions)]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                rss.append((time.monotonic() - started, memory_mb("VmRSS", app.pid)))
                time.sleep(1.0)
            for t in threads:
                t.join()
            wall = time.monotonic() - started
            if app.poll() is not None:
                results.errors.append(f"app.py exited with {app.returncode}")
        finally:
            app.terminate()
            app.wait(timeout=30)
    fifth = max(1, len(rss) // 5)
    return {
        "sessions": sessions, "seconds": round(wall, 1), "questions": len(results.latencies_s),
        "errors": len(results.errors), "error_samples": results.errors[:5],
        "wrong": len(results.mismatches), "wrong_samples": sorted(set(results.mismatches))[:5],
        "p50_s": round(percentile(results.latencies_s, 0.5), 3), "p95_s": round(percentile(results.latencies_s, 0.95), 3),
        "per_second": round(len(results.latencies_s) / wall, 1),
        "rss_first_fifth_mb": round(sum(r for _, r in rss[:fifth]) / fifth, 1),
        "rss_last_fifth_mb": round(sum(r for _, r in rss[-fifth:]) / fifth, 1),
        "rss_peak_mb": round(max(r for _, r in rss), 1),
    }


def _wait_for(url: str, app: subprocess.Popen[bytes]) -> Any:
    from gradio_client import Client

    deadline = time.monotonic() + 180
    while True:
        if app.poll() is not None:
            raise RuntimeError(f"app.py exited with {app.returncode}")
        try:
            return Client(url, verbose=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--corpus", choices=["seed", "news"], default="seed",
                        help="news adds the RealTime QA pages (../shared/data) as distractors")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS or not 1 <= args.seconds <= MAX_SECONDS:
        parser.error(f"--sessions must be 1..{MAX_SESSIONS} and --seconds 1..{MAX_SECONDS}")
    r = run_load(args.sessions, args.seconds, args.corpus)
    growth = r["rss_last_fifth_mb"] / r["rss_first_fifth_mb"] - 1
    print(f"{r['sessions']} chat sessions for {r['seconds']} s ({args.corpus} corpus): {r['questions']} questions, "
          f"{r['per_second']}/s; errors {r['errors']}, replies differing from the one-at-a-time reference "
          f"{r['wrong']}; latency p50 {r['p50_s'] * 1000:.0f} ms, p95 {r['p95_s'] * 1000:.0f} ms; app RSS "
          f"{r['rss_first_fifth_mb']:.0f} MB (first fifth) -> {r['rss_last_fifth_mb']:.0f} MB (last fifth), "
          f"{growth:+.1%}, peak {r['rss_peak_mb']:.0f} MB")
    for sample in r["error_samples"] + r["wrong_samples"]:
        print(f"  {sample}")
    return 0 if r["errors"] == 0 and r["wrong"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
