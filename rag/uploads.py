"""Files uploaded through the page, kept under the index (`<index_dir>/uploads`) so re-sync finds them again:
stored under generated names (a content hash and a cleaned name; no path from the client is ever used), the
type and size checked first."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path


def accepted_types() -> list[str]:
    """The file suffixes ingest reads (".txt", ".html", ..., ".warc.gz"): each is read within a memory bound
    (docs/LIMITS.md)."""
    from ingest.load import FORMATS

    return sorted([*FORMATS, ".warc.gz"])


def uploads_dir(index_dir: str | Path) -> Path:
    return Path(index_dir) / "uploads"


def store_uploads(files: Sequence[str], dest: Path, max_bytes: int) -> tuple[dict[Path, str], list[tuple[str, str]]]:
    """Copy uploaded files under `dest`. Returns ({stored path: original name}, [(original name, why refused)])."""
    types = set(accepted_types())
    stored: dict[Path, str] = {}
    refused: list[tuple[str, str]] = []
    dest.mkdir(parents=True, exist_ok=True)
    for temp in files:
        temp_path = Path(temp)
        name = temp_path.name
        suffix = ".warc.gz" if name.lower().endswith(".warc.gz") else temp_path.suffix.lower()
        if suffix not in types:
            refused.append((name, f"unsupported file type {suffix or '(none)'!r}; accepted: {' '.join(sorted(types))}"))
            continue
        size = temp_path.stat().st_size
        if size > max_bytes:
            refused.append((name, f"{size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit"))
            continue
        digest = hashlib.sha256()
        with temp_path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name[: -len(suffix)]).strip("-")[:60] or "upload"
        target = dest / f"{digest.hexdigest()[:16]}-{slug}{suffix}"
        if not target.exists():
            partial = target.with_name(target.name + ".part")
            shutil.copyfile(temp_path, partial)
            partial.replace(target)
        stored[target] = name
    return stored, refused
