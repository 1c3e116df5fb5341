"""Paths -> source files -> raw records (one per article), with a reason for everything skipped."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import IngestError
from rag.types import SkippedFile

FORMATS = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
}


@dataclass(frozen=True)
class SourceFile:
    path: Path  # as given (for messages)
    key: str  # absolute, resolved: the catalog's key for this file
    format: str
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class RawRecord:
    doc_id: str
    path: str
    format: str
    text: str
    meta: Mapping[str, Any] = field(default_factory=dict)


def doc_id_for_path(path: Path) -> str:
    """The path relative to the working directory when under it, else absolute (POSIX form)."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[SourceFile], list[SkippedFile]]:
    """Files under the given files/folders (recursively, symlinked folders not followed), sorted."""
    found: dict[str, SourceFile] = {}
    skipped: list[SkippedFile] = []
    for given in paths:
        root = Path(given)
        if root.is_dir():
            candidates: list[Path] = []
            for folder, dirs, files in os.walk(root, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                candidates.extend(Path(folder) / name for name in sorted(files) if not name.startswith("."))
        elif root.exists():
            candidates = [root]
        else:
            skipped.append(SkippedFile(str(root), "no such file or folder"))
            continue
        for path in candidates:
            fmt = FORMATS.get(path.suffix.lower())
            if fmt is None:
                skipped.append(SkippedFile(str(path), f"unsupported file type {path.suffix or '(none)'!r}"))
                continue
            try:
                stat = path.stat()
                key = str(path.resolve(strict=True))
            except (OSError, RuntimeError) as exc:  # dangling link, symlink loop, permission
                skipped.append(SkippedFile(str(path), f"cannot be read: {exc.__class__.__name__}: {exc}"))
                continue
            if not path.is_file():
                skipped.append(SkippedFile(str(path), "not a regular file"))
                continue
            found.setdefault(key, SourceFile(path, key, fmt, stat.st_mtime_ns, stat.st_size))
    return sorted(found.values(), key=lambda f: f.key), skipped


def decode(data: bytes) -> str:
    """Bytes -> text: UTF-8 first, then a detected encoding; binary data is refused."""
    if not data.strip():
        raise IngestError("empty file")
    head = data[:8192]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise IngestError("binary content (NUL bytes) in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise IngestError("unknown text encoding (not UTF-8, and no other encoding fits)")
    text = str(best)
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t")
    if controls > 0.05 * min(len(text), 8192):
        raise IngestError("binary content in a text file")
    return text


# The keys a JSONL record's date may have, first found wins (ingest.dates.parse_date reads the value).
DATE_KEYS = ("published", "date", "publish_date", "published_at", "pubDate", "datePublished")


def read_records(source: SourceFile, max_bytes: int, max_chars: int = 1_000_000,
                 ) -> Iterator[RawRecord | SkippedFile]:
    """The articles in one file. A whole-file problem raises IngestError; a bad JSONL line (malformed, or
    over `max_chars`) is yielded as a SkippedFile naming its line and the rest of the file goes on."""
    if source.size > max_bytes:
        raise IngestError(f"file is {source.size:,} bytes, over the {max_bytes:,}-byte limit")
    try:
        data = source.path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot be read: {exc}") from exc
    if len(data) > max_bytes:
        raise IngestError(f"file is {len(data):,} bytes, over the {max_bytes:,}-byte limit")
    doc_id = doc_id_for_path(source.path)
    if source.format == "pdf":
        text, meta = _read_pdf(data)
        if len(text) > max_chars:
            raise IngestError(f"the PDF's text is {len(text):,} characters, over the {max_chars:,}-character "
                              "article limit")
        yield RawRecord(doc_id, str(source.path), "pdf", text, meta)
        return
    text = decode(data)
    del data
    if source.format in ("txt", "md") and len(text) > max_chars:  # HTML is measured after extraction
        raise IngestError(f"the article is {len(text):,} characters, over the {max_chars:,}-character limit "
                          "(split it into several files)")
    if source.format != "jsonl":
        yield RawRecord(doc_id, str(source.path), source.format, text)
        return
    any_line = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        any_line = True
        where = f"{source.path}:{lineno}"
        # Before parsing: a line no article under the limit could make. JSON may escape each character as \uXXXX
        # (6 characters), so only a line over 6x the limit plus room for metadata is certainly too long.
        if len(line) > 6 * max_chars + 10_000:
            yield SkippedFile(where, f"line {lineno} is {len(line):,} characters, over the {max_chars:,}-character "
                                     "article limit")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield SkippedFile(where, f"malformed JSON on line {lineno}: {exc.msg}")
            continue
        if not isinstance(obj, dict):
            yield SkippedFile(where, f"line {lineno} is not a JSON object")
            continue
        body = obj.get("text")
        if not isinstance(body, str) or not body.strip():
            yield SkippedFile(where, f"line {lineno} has no \"text\"")
            continue
        if len(body) > max_chars:
            yield SkippedFile(where, f"line {lineno}'s text is {len(body):,} characters, over the {max_chars:,}-"
                                     "character article limit")
            continue
        record_id = obj.get("id")
        authors = obj.get("authors") or ()
        if isinstance(authors, str):
            authors = (authors,)
        meta = {
            "title": str(obj.get("title") or ""),
            "url": str(obj.get("url") or ""),
            "source": str(obj.get("source") or ""),
            "published": next((obj[k] for k in DATE_KEYS if obj.get(k) not in (None, "")), ""),
            "authors": tuple(str(a) for a in authors if a),
        }
        rid = str(record_id) if record_id not in (None, "") else f"{doc_id}#{lineno}"
        yield RawRecord(rid, where, "jsonl", body, meta)
    if not any_line:
        raise IngestError("empty file")


def _read_pdf(data: bytes) -> tuple[str, dict[str, Any]]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        pages = [page.extract_text() or "" for page in reader.pages]
        info: Any = reader.metadata or {}
        title = str(info.get("/Title") or "").strip()
        author = str(info.get("/Author") or "").strip()
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        raise IngestError(f"corrupt or unreadable PDF: {exc.__class__.__name__}: {exc}") from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text.strip():
        raise IngestError("the PDF has no extractable text (scanned images need OCR first)")
    return text, {"title": title, "authors": (author,) if author else ()}
