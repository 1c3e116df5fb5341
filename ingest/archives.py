"""Crawl archives and datasets, streamed record by record: WARC / WARC.gz (warcio), CSV, Parquet (pyarrow).

Nothing holds a whole file: a WARC is iterated record by record, a CSV row by row, a Parquet file in batches
of rows of the needed columns only, so memory stays flat however large the file. Every record obeys the JSONL
rules (ingest.load.record_from_fields): its own id or one from its position, a text required and limited in size,
a bad record reported and skipped while the rest goes on.
"""

from __future__ import annotations

import csv
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


# A WARC or HTTP header line, and a record's header block, longer than these is no header: hostile or damaged.
MAX_WARC_LINE_BYTES = 64 * 1024
MAX_WARC_HEADER_BYTES = 1024 * 1024


class _Truncated(Exception):
    """A record ends before its Content-Length: the archive was cut."""


def _warc_records(stream: Any) -> Iterator[Any]:
    """warcio's record iterator over `stream`, with a header line and a header block of bounded length, and a
    response without a target URI read as one without HTTP headers (warcio itself fails on it)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.bufferedreaders import DecompressingBufferedReader
    from warcio.exceptions import ArchiveLoadFailed
    from warcio.recordloader import ArcWarcRecordLoader

    class BoundedLines(DecompressingBufferedReader):
        header_bytes = 0  # read by readline since the last content read
        unfinished = 0  # header lines (not blank) read since the last record was handed out
        cut_member = False  # a gzip member ended before its end: the file was cut

        def readline(self, length: int | None = None) -> bytes:
            cap = MAX_WARC_LINE_BYTES + 1 if length is None else min(length, MAX_WARC_LINE_BYTES + 1)
            line: bytes = super().readline(cap)
            self.header_bytes += len(line)
            self.unfinished += bool(line.strip())
            if len(line) > MAX_WARC_LINE_BYTES:
                raise ArchiveLoadFailed(f"a header line over {MAX_WARC_LINE_BYTES:,} bytes")
            if self.header_bytes > MAX_WARC_HEADER_BYTES:
                raise ArchiveLoadFailed(f"a record's headers run over {MAX_WARC_HEADER_BYTES:,} bytes")
            return line

        def read(self, length: int | None = None) -> bytes:
            self.header_bytes = 0  # a read is a record's content: its headers are over
            return bytes(super().read(length))

        fed = False  # the current gzip member was given bytes

        def _decompress(self, data: bytes) -> bytes:
            was_gzip = self.decompressor is not None and self.num_read > 0
            self.fed |= bool(data) and self.decompressor is not None
            out: bytes = super()._decompress(data)
            if was_gzip and self.decompressor is None:  # a later member that is no gzip: warcio reads it as plain
                self.cut_member = True
            return out

        def _init_decomp(self, decomp_type: str | None) -> None:
            self.fed = False
            super()._init_decomp(decomp_type)

        def close_decompressor(self) -> None:
            if self.decompressor is not None and self.fed and not self.decompressor.eof:
                self.cut_member = True
            super().close_decompressor()

    class Loader(ArcWarcRecordLoader):
        def load_http_headers(self, rec_type: str, uri: str | None, stream: Any, length: int | None) -> Any:
            return super().load_http_headers(rec_type, uri or "", stream, length)

    records = ArchiveIterator(stream, arc2warc=True, check_digests=True)
    records.reader = lines = BoundedLines(records.fh, block_size=records.reader.block_size)
    records.loader = Loader(verify_http=False, arc2warc=True)
    for record in records:
        lines.unfinished = 0
        declared = str(record.rec_headers.get_header("Content-Length") or "").strip()
        if record.format.startswith("warc") and not declared.isdigit():
            raise _Truncated("a record without its Content-Length")
        yield record
    if lines.cut_member or lines.unfinished:  # warcio ends quietly inside a record's headers
        raise _Truncated("the archive ends inside a record")


def _drain(record: Any) -> None:
    """Read the rest of a record: _Truncated where it ends before its declared length, ArchiveLoadFailed (from
    the digest check) where its bytes are not the ones its digest names."""
    from warcio.exceptions import ArchiveLoadFailed

    stream = record.raw_stream
    while stream.read(1 << 16):
        pass
    if getattr(stream, "limit", 0) > 0:
        raise _Truncated(f"a record ends {stream.limit:,} bytes before its declared length")
    checker = getattr(record, "digest_checker", None)
    if checker is not None and checker.passed is False:
        raise ArchiveLoadFailed("; ".join(checker.problems) or "a record's digest does not match")


def read_warc(source: SourceFile, max_record_bytes: int) -> Iterator[RawRecord | SkippedFile]:
    """The HTML responses (status 200) of a WARC file: each page under its WARC-Target-URI as id, with that URI
    and the WARC-Date as metadata where the page has none. Requests, metadata and non-HTML responses are passed
    over. A record whose digest does not match is reported and skipped; damage that breaks the archive's framing
    (a cut file, a bad gzip member, an over-long header) ends the file there, and what was cut is never read as a
    page."""
    from warcio.exceptions import ArchiveLoadFailed

    pages = 0
    try:
        with source.path.open("rb") as stream:
            for record in _warc_records(stream):
                uri = str(record.rec_headers.get_header("WARC-Target-URI") or "")
                where = f"{source.path}@{uri or 'record'}"
                if record.rec_type != "response":
                    _drain(record)
                    continue
                if not uri:
                    _drain(record)
                    yield SkippedFile(where, "a response without a WARC-Target-URI")
                    continue
                if record.http_headers is None:
                    _drain(record)
                    continue
                status = str(record.http_headers.get_statuscode() or "")
                content_type = str(record.http_headers.get_header("Content-Type") or "").lower()
                if "html" not in content_type:
                    _drain(record)
                    continue
                if status != "200":
                    _drain(record)
                    yield SkippedFile(where, f"HTTP status {status or '(none)'} in the archive")
                    continue
                body = record.content_stream().read(max_record_bytes + 1)
                try:
                    _drain(record)
                except ArchiveLoadFailed as exc:  # this record's bytes are wrong, the framing holds: go on
                    yield SkippedFile(where, f"damaged record: {exc}")
                    continue
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
    # Truncated, bad gzip, bad framing, an over-long header; warcio raises the last four on malformed records.
    except (_Truncated, ArchiveLoadFailed, OSError, EOFError, ValueError, zlib.error, AttributeError, TypeError,
            IndexError, KeyError) as exc:
        yield SkippedFile(str(source.path), f"the archive is damaged after {pages} page(s), the rest is not read: "
                                            f"{exc.__class__.__name__}: {exc}".replace("_Truncated: ", ""))
        return
    if not pages:
        raise IngestError("no HTML responses in the WARC file")


class _LongLine(Exception):
    """A CSV line longer than any row under the article limit."""


class _Lines:
    """The lines of a text stream, none read whole past `limit` characters: the rest of a longer line is read and
    dropped, and that line raises _LongLine (the iterator goes on after it). `number`: the last line's number."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.stream, self.limit, self.number = stream, limit, 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.stream.readline(self.limit + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) > self.limit and not line.endswith("\n"):
            while (rest := self.stream.readline(1 << 20)) and not rest.endswith("\n"):
                pass
            raise _LongLine(f"line {self.number} is over {self.limit:,} characters")
        return str(line)


def read_csv(source: SourceFile, max_chars: int, columns: Columns) -> Iterator[RawRecord | SkippedFile]:
    """One article per row; the header names the columns (`columns` says which is which). No line or field is
    read whole past the article limit (and room for the row's other fields): such a row is reported and skipped,
    and the rows after it are read."""
    line_limit = max_chars + 64 * 1024
    csv.field_size_limit(line_limit)  # one field: an article; the longer ones are refused below as over the limit
    try:
        stream = source.path.open(newline="", encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise IngestError(f"cannot be read: {exc}") from exc
    with stream:
        lines = _Lines(stream, line_limit)
        try:
            reader = csv.DictReader(lines)
            header = reader.fieldnames
        except (_LongLine, csv.Error) as exc:
            raise IngestError(f"no readable header row ({exc})") from exc
        if not header:
            raise IngestError("empty CSV file (no header row)")
        if not set(header) & set(columns.text):
            raise IngestError(f"no text column: the header has {', '.join(header[:12])}; name the text "
                              f"column with --columns text=NAME")
        row_number = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except (_LongLine, csv.Error) as exc:
                row_number += 1
                problem = (f"is over the {max_chars:,}-character article limit ({exc})" if isinstance(exc, _LongLine)
                           or "field limit" in str(exc) else f"is malformed: {exc}")
                yield SkippedFile(f"{source.path}:{lines.number}", f"CSV row {row_number} {problem}")
                reader = csv.DictReader(lines, fieldnames=header)  # a new parser: the row's state is dropped
                continue
            row_number += 1
            where = f"{source.path}:{lines.number}"
            if None in row:  # more fields than the header has
                yield SkippedFile(where, f"row {row_number} has {len(header) + len(row[None])} fields, "
                                         f"the header {len(header)}")
                continue
            yield record_from_fields(row, where, f"{_doc_id(source)}#{row_number}", f"row {row_number}", max_chars,
                                     "csv", columns)


# A Parquet row group whose mapped columns unpack past this, at more than BOMB_RATIO times their stored size, is a
# compression bomb: it is refused from the file's metadata, before a byte of it is unpacked.
BOMB_MIN_BYTES = 64 * 2**20
BOMB_RATIO = 50


def read_parquet(source: SourceFile, max_chars: int, columns: Columns) -> Iterator[RawRecord | SkippedFile]:
    """One article per row, read in batches of the mapped columns only. A row group that is a compression bomb
    is refused from the metadata; a cell over the article limit is refused before it becomes a Python string."""
    import pyarrow as pa
    import pyarrow.compute as pc
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
    max_cell_bytes = 4 * max_chars  # UTF-8: at most 4 bytes a character
    row_number = 0
    try:
        for group in range(parquet.metadata.num_row_groups):
            meta = parquet.metadata.row_group(group)
            chunks = [meta.column(j) for j in range(meta.num_columns) if meta.column(j).path_in_schema in wanted]
            unpacked = sum(c.total_uncompressed_size for c in chunks)
            stored = sum(c.total_compressed_size for c in chunks)
            if unpacked > BOMB_MIN_BYTES and unpacked > BOMB_RATIO * max(stored, 1):
                yield SkippedFile(f"{source.path}#{row_number + 1}-{row_number + meta.num_rows}",
                                  f"row group {group + 1} unpacks to {unpacked / 2**20:,.0f} MB from "
                                  f"{stored / 1024:,.0f} KB, a compression bomb: its {meta.num_rows:,} rows are "
                                  "not read")
                row_number += meta.num_rows
                continue
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted, row_groups=[group]):
                too_long = _long_cells(batch, max_cell_bytes, pa, pc)
                if too_long:
                    keep = pa.array([i not in too_long for i in range(batch.num_rows)])
                    batch = batch.filter(keep)
                kept = iter(batch.to_pylist())
                for i in range(batch.num_rows + len(too_long)):
                    row_number += 1
                    if i in too_long:
                        yield SkippedFile(f"{source.path}#{row_number}", f"row {row_number}'s {too_long[i]}")
                        continue
                    yield record_from_fields(_as_fields(next(kept)), f"{source.path}#{row_number}",
                                             f"{_doc_id(source)}#{row_number}", f"row {row_number}", max_chars,
                                             "parquet", columns)
    except (pa.ArrowException, OSError) as exc:
        yield SkippedFile(str(source.path), f"the file is damaged after row {row_number}, the rest is not read: {exc}")


def _long_cells(batch: Any, max_bytes: int, pa: Any, pc: Any) -> dict[int, str]:
    """{row in the batch: what is too long} for the string and binary cells over `max_bytes`."""
    out: dict[int, str] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
                or pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
            continue
        lengths = pc.binary_length(column)
        if (pc.max(lengths).as_py() or 0) <= max_bytes:
            continue
        for i, length in enumerate(lengths.to_pylist()):
            if length is not None and length > max_bytes and i not in out:
                out[i] = f"{name!r} cell is {length:,} bytes, over the {max_bytes:,}-byte limit (the article limit)"
    return out


def _as_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Parquet values as record fields: lists (authors) stay lists, everything else as is."""
    return {k: (v if not isinstance(v, bytes) else v.decode("utf-8", "replace")) for k, v in row.items()}


def _doc_id(source: SourceFile) -> str:
    from ingest.load import doc_id_for_path

    return doc_id_for_path(source.path)
