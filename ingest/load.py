"""Paths -> source files -> raw records (one per article), with a reason for everything skipped."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, IngestError
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
    ".warc": "warc",
    ".csv": "csv",
    ".parquet": "parquet",
}
STREAMED = frozenset({"warc", "csv", "parquet"})


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


def file_format(path: Path) -> str | None:
    """The format a file is read as, from its name (None: not one we read)."""
    name = path.name.lower()
    if name.endswith(".warc.gz"):
        return "warc"
    return FORMATS.get(path.suffix.lower())


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
            if not candidates:
                skipped.append(SkippedFile(str(root), "the folder holds no files"))
        elif root.exists():
            candidates = [root]
        else:
            skipped.append(SkippedFile(str(root), "no such file or folder"))
            continue
        for path in candidates:
            fmt = file_format(path)
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


def decode_as(data: bytes, content_type: str) -> str:
    """Bytes of an HTTP body (a fetched page, a WARC response) -> text: the charset its Content-Type names, else
    as `decode` finds it."""
    charset = re.search(r'charset="?([\w.-]+)', content_type.lower())
    if charset:
        try:
            return data.decode(charset.group(1))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode(data)


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


@dataclass(frozen=True)
class Columns:
    """Which fields of a record (a JSONL object, a CSV or Parquet row) hold what: the first present and non-empty
    of each wins. `Columns.parse("text=article_body,title=headline")` puts those names first."""

    text: tuple[str, ...] = ("text", "content", "body", "article", "maintext")
    title: tuple[str, ...] = ("title", "headline")
    url: tuple[str, ...] = ("url", "link")
    published: tuple[str, ...] = DATE_KEYS
    source: tuple[str, ...] = ("source", "publisher", "source_domain")
    authors: tuple[str, ...] = ("authors", "author")
    id: tuple[str, ...] = ("id",)

    @classmethod
    def parse(cls, spec: str) -> Columns:
        """'' -> the defaults; otherwise field=column pairs, comma-separated, each put before the defaults."""
        columns = cls()
        for pair in filter(None, (p.strip() for p in spec.split(","))):
            name, _, column = pair.partition("=")
            name, column = name.strip(), column.strip()
            if name not in cls.__dataclass_fields__ or not column:
                raise ConfigError(f"column mapping {pair!r}: use FIELD=COLUMN with FIELD one of "
                                  f"{', '.join(cls.__dataclass_fields__)}")
            columns = replace(columns, **{name: (column, *getattr(columns, name))})
        return columns

    def names(self) -> set[str]:
        return {n for f in self.__dataclass_fields__ for n in getattr(self, f)}


def _first(obj: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((obj[k] for k in keys if obj.get(k) not in (None, "")), None)


def record_from_fields(obj: Mapping[str, Any], where: str, fallback_id: str, what: str, max_chars: int,
                       fmt: str, columns: Columns | None = None) -> RawRecord | SkippedFile:
    """One article from a record's fields (`what` names it in messages, e.g. "line 7" or "row 12"); the
    same rules for JSONL, CSV and Parquet: a text is required and is at most `max_chars`, the id is the record's
    own or `fallback_id`."""
    columns = columns or Columns()
    body = _first(obj, columns.text)
    if not isinstance(body, str) or not body.strip():
        return SkippedFile(where, f"{what} has no text (looked for {', '.join(columns.text)})")
    if len(body) > max_chars:
        return SkippedFile(where, f"{what}'s text is {len(body):,} characters, over the {max_chars:,}-character "
                                  "article limit")
    authors = _first(obj, columns.authors) or ()
    if isinstance(authors, str):
        authors = tuple(a.strip() for a in re.split(r";|\|", authors) if a.strip())
    elif not isinstance(authors, (list, tuple)):
        authors = (str(authors),)
    published = _first(obj, columns.published)
    if hasattr(published, "isoformat"):  # a datetime or date from Parquet
        published = published.isoformat()
    record_id = _first(obj, columns.id)
    meta = {
        "title": str(_first(obj, columns.title) or ""),
        "url": str(_first(obj, columns.url) or ""),
        "source": str(_first(obj, columns.source) or ""),
        "published": published if published is not None else "",
        "authors": tuple(str(a) for a in authors if a),
    }
    return RawRecord(str(record_id) if record_id is not None else fallback_id, where, fmt, body, meta)


def read_records(source: SourceFile, max_bytes: int, max_chars: int = 1_000_000, columns: Columns | None = None,
                 ) -> Iterator[RawRecord | SkippedFile]:
    """The articles in one file. A whole-file problem raises IngestError; a bad record (a malformed JSONL line,
    a CSV or Parquet row without text, a damaged WARC record, one over `max_chars`) is yielded as a SkippedFile
    naming where it is, and the rest of the file goes on. Archives and datasets (WARC, CSV, Parquet) are streamed
    (ingest/archives.py) and have no size limit; `max_bytes` limits each of their records instead."""
    if source.format in STREAMED:
        from ingest import archives

        yield from archives.read(source, max_bytes, max_chars, columns or Columns())
        return
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
            yield SkippedFile(where, f"malformed JSON on line {lineno}, column {exc.colno}: {exc.msg}")
            continue
        if not isinstance(obj, dict):
            yield SkippedFile(where, f"line {lineno} is not a JSON object")
            continue
        yield record_from_fields(obj, where, f"{doc_id}#{lineno}", f"line {lineno}", max_chars, "jsonl", columns)
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
