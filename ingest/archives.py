"""Crawl archives and datasets, streamed record by record: WARC / WARC.gz (warcio), CSV, Parquet (pyarrow).

Nothing holds a whole file: a WARC is iterated record by record, a CSV row by row, a Parquet file in batches
of rows of the needed columns only, so memory stays flat however large the file. Every record obeys the JSONL
rules (ingest.load.record_from_fields): its own id or one from its position, a text required and limited in size,
a bad record reported and skipped while the rest goes on.
"""

from __future__ import annotations

import csv
import sys
import zlib
from collections.abc import Iterator
from typing import Any

from ingest.load import Columns, RawRecord, SourceFile, decode_as, record_from_fields
from rag.errors import IngestError
from rag.types import SkippedFile

PARQUET_BATCH_ROWS = 256


def read(source: SourceFile, max_record_bytes: int, max_chars: int, columns: Columns
         ) -> Iterator[RawRecord | SkippedFile]:
    if source.format == "warc":
        yield from read_warc(source, max_record_bytes)
    elif source.format == "csv":
        yield from read_csv(source, max_chars, columns)
    elif source.format == "parquet":
        yield from read_parquet(source, max_chars, columns)
    else:  # pragma: no cover - load.STREAMED names the formats above
        raise IngestError(f"not a streamed format: {source.format}")


def read_warc(source: SourceFile, max_record_bytes: int) -> Iterator[RawRecord | SkippedFile]:
    """The HTML responses (status 200) of a WARC file: each page under its WARC-Target-URI as id, with that URI
    and the WARC-Date as metadata where the page has none. Requests, metadata and non-HTML responses are passed
    over; a damaged record is reported, and damage that breaks the archive's framing ends the file there."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    pages = 0
    try:
        with source.path.open("rb") as stream:
            for record in ArchiveIterator(stream, arc2warc=True):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                uri = str(record.rec_headers.get_header("WARC-Target-URI") or "")
                where = f"{source.path}@{uri or 'record'}"
                status = str(record.http_headers.get_statuscode() or "")
                content_type = str(record.http_headers.get_header("Content-Type") or "").lower()
                if "html" not in content_type:
                    continue
                if status != "200":
                    yield SkippedFile(where, f"HTTP status {status or '(none)'} in the archive")
                    continue
                if not uri:
                    yield SkippedFile(where, "a response without a WARC-Target-URI")
                    continue
                body = record.content_stream().read(max_record_bytes + 1)
                if len(body) > max_record_bytes:
                    yield SkippedFile(where, f"the page is over the {max_record_bytes:,}-byte limit")
                    continue
                try:
                    text = decode_as(body, content_type)
                except IngestError as exc:
                    yield SkippedFile(where, str(exc))
                    continue
                pages += 1
                yield RawRecord(uri, where, "html", text,
                                {"url": uri, "published": str(record.rec_headers.get_header("WARC-Date") or "")})
    except (ArchiveLoadFailed, OSError, EOFError, ValueError, zlib.error) as exc:  # truncated, bad gzip, bad framing
        yield SkippedFile(str(source.path), f"the archive is damaged after {pages} page(s), the rest is not read: "
                                            f"{exc.__class__.__name__}: {exc}")
    if not pages:
        raise IngestError("no HTML responses in the WARC file")


def read_csv(source: SourceFile, max_chars: int, columns: Columns) -> Iterator[RawRecord | SkippedFile]:
    """One article per row; the header names the columns (`columns` says which is which)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a long article is one field; records are limited below
    try:
        stream = source.path.open(newline="", encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise IngestError(f"cannot be read: {exc}") from exc
    with stream:
        reader = csv.DictReader(stream)
        if not reader.fieldnames:
            raise IngestError("empty CSV file (no header row)")
        if not set(reader.fieldnames) & set(columns.text):
            raise IngestError(f"no text column: the header has {', '.join(reader.fieldnames[:12])}; name the text "
                              f"column with --columns text=NAME")
        row_number = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                row_number += 1
                yield SkippedFile(f"{source.path}:{reader.line_num}", f"malformed CSV row {row_number}: {exc}")
                continue
            row_number += 1
            where = f"{source.path}:{reader.line_num}"
            if None in row:  # more fields than the header has
                yield SkippedFile(where, f"row {row_number} has {len(reader.fieldnames) + len(row[None])} fields, "
                                         f"the header {len(reader.fieldnames)}")
                continue
            yield record_from_fields(row, where, f"{_doc_id(source)}#{row_number}", f"row {row_number}", max_chars,
                                     "csv", columns)


def read_parquet(source: SourceFile, max_chars: int, columns: Columns) -> Iterator[RawRecord | SkippedFile]:
    """One article per row, read in batches of the mapped columns only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # No pre-buffering or memory map: batches stream within a row group, and memory stays flat (a 300 MB file
        # read in 75 MB over pyarrow's own, the same as a 100 MB one).
        parquet = pq.ParquetFile(source.path, pre_buffer=False, memory_map=False)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"not a readable Parquet file: {exc}") from exc
    names = parquet.schema_arrow.names
    if not set(names) & set(columns.text):
        raise IngestError(f"no text column: the file has {', '.join(names[:12])}; name the text column with "
                          f"--columns text=NAME")
    wanted = [n for n in names if n in columns.names()]
    row_number = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            for row in batch.to_pylist():
                row_number += 1
                yield record_from_fields(_as_fields(row), f"{source.path}#{row_number}",
                                         f"{_doc_id(source)}#{row_number}", f"row {row_number}", max_chars,
                                         "parquet", columns)
    except (pa.ArrowException, OSError) as exc:
        yield SkippedFile(str(source.path), f"the file is damaged after row {row_number}, the rest is not read: {exc}")


def _as_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Parquet values as record fields: lists (authors) stay lists, everything else as is."""
    return {k: (v if not isinstance(v, bytes) else v.decode("utf-8", "replace")) for k, v in row.items()}


def _doc_id(source: SourceFile) -> str:
    from ingest.load import doc_id_for_path

    return doc_id_for_path(source.path)
