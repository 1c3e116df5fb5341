"""Time from `python app.py` to a served chat page, and to the first answer through it, over the seed index.

    python -m bench.serve [--runs 3]

What `make run` does once the index is built (its venv and index steps are no-ops then). No baseline: LlamaIndex
ships no web page.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.worker import free_port, percentile, spawn

REPO = Path(__file__).resolve().parent.parent


def serve_once(index: Path) -> tuple[float, float]:
    """(seconds to the page answering HTTP 200, seconds to the first answer through gradio_client)."""
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--index", str(index), "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        page = time.perf_counter() - started
        Client(f"http://127.0.0.1:{port}/", verbose=False).predict("Who requested CSTO troops?", 5, [], "", "", "",
                                                                   api_name="/answer")
        return page, time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        index = Path(tmp) / "index"
        spawn("ingest", index, [str(REPO / "corpus")])
        runs = [serve_once(index) for _ in range(args.runs)]
    pages, answers = [r[0] for r in runs], [r[1] for r in runs]
    print(f"app.py to a served page: median {percentile(pages, 0.5):.1f} s; to the first answer through it: "
          f"median {percentile(answers, 0.5):.1f} s ({args.runs} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
