"""Run a child process under a memory ceiling: its resident memory is sampled as it runs, and it is killed the
moment it passes the ceiling (a bomb that would take the machine fails its test in a second instead)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO


@dataclass(frozen=True)
class Bounded:
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float  # the highest resident memory seen
    killed: bool  # passed the ceiling


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def run_bounded(args: list[str], ceiling_mb: float, timeout_s: float = 300.0) -> Bounded:
    """`python ARGS` in the repository, killed when its RSS passes `ceiling_mb` or its time `timeout_s`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak, killed = 0.0, False
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        peak = max(peak, rss_mb(proc.pid))
        if peak > ceiling_mb or time.monotonic() > deadline:
            killed = True
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    stdout, stderr = proc.communicate()
    return Bounded(proc.returncode, stdout, stderr, peak, killed)
