"""Start real services on loopback for tests, and stop them."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def app_env(**extra: str) -> dict[str, str]:
    """The environment for a page process under test: offline, no analytics, and no host, login or Chroma server
    of the caller's unless given here."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **extra}
    for key in ("RAG_HOST", "RAG_USERNAME", "RAG_PASSWORD", "RAG_CHROMA_URL"):
        if key not in extra:
            env.pop(key, None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
                if response.status < 500:
                    return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s: {last}")


@contextmanager
def running(cmd: Sequence[str], ready_url: str, log: Path, timeout_s: float = 60, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        try:
            wait_http(ready_url, timeout_s, proc)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def close_chroma_client_leaks() -> None:
    """Close the HTTP sessions chromadb's HttpClient leaves behind: each client also makes an admin client whose
    system nothing releases, and whose httpx session is never closed (a chromadb leak, not ours). Left open, their
    sockets raise ResourceWarning in whichever later test the garbage collector happens to run."""
    from chromadb.api.shared_system_client import SharedSystemClient

    systems, refcounts = SharedSystemClient._identifier_to_system, SharedSystemClient._identifier_to_refcount
    for identifier, system in list(systems.items()):
        if identifier in refcounts:
            continue
        for component in list(system._instances.values()):
            session = getattr(component, "_session", None)
            if session is not None:
                session.close()
        del systems[identifier]
    # Connections httpx dropped when a test killed or froze the server mid-request are only closed by the garbage
    # collector: collect them here, where their ResourceWarning is expected, not in some later test.
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
