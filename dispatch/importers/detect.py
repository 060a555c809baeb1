"""Reading a request file from disk: size and type checks, format detection, dispatch.

This is the I/O adapter of the importers; everything it calls is pure shaping.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dispatch.errors import ImportFormatError
from dispatch.importers import generic_csv, myla311, open311
from dispatch.importers.common import ImportContext, ParseResult

FORMATS = ("auto", "myla311", "open311", "csv")
#: Largest file read whole (JSON, dashboard uploads), in bytes.
MAX_FILE_BYTES = 200 * 1024 * 1024
#: Largest CSV file streamed chunk by chunk from disk, in bytes.
MAX_STREAM_BYTES = 4 * 1024 * 1024 * 1024
#: Rows parsed, located and stored together by a streamed import.
CHUNK_ROWS = 20_000

_BINARY_MAGIC = {
    b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b": "a gzip archive",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"SQLite format 3": "a SQLite database",
}


def decode_text(data: bytes, name: str) -> str:
    """Decode file bytes as UTF-8 text, refusing binaries with a clear message.

    Raises
    ------
    ImportFormatError
        For known binary formats, NUL bytes or bytes that are not UTF-8.
    """
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise ImportFormatError(f"{name} is {what}; expected a CSV or JSON text file")
    if b"\x00" in data[:65536]:
        raise ImportFormatError(f"{name} contains NUL bytes; expected a CSV or JSON text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ImportFormatError(
            f"{name} is not UTF-8 text (byte {err.start} is {data[err.start]:#04x}); "
            "save it as UTF-8 CSV or JSON"
        ) from None


def detect_format(text: str, name: str) -> str:
    """Return ``myla311``, ``open311`` or ``csv`` for a decoded file.

    Raises
    ------
    ImportFormatError
        When the text is neither a GeoReport v2 JSON document nor a CSV with a header.
    """
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            payload = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise ImportFormatError(f"{name} is not valid JSON: {err}") from None
        if open311.is_open311_payload(payload):
            return "open311"
        raise ImportFormatError(
            f"{name} is JSON but not an Open311 GeoReport v2 request list "
            "(expected an array of objects with service_request_id)"
        )
    header = next(csv.reader(io.StringIO(stripped)), [])
    if myla311.is_myla311_header(header):
        return "myla311"
    if len(header) >= 2:
        return "csv"
    raise ImportFormatError(
        f"{name} is neither a CSV with a header row nor an Open311 JSON document "
        f"(first line: {stripped.splitlines()[0][:60]!r})" if stripped else f"{name} is empty"
    )


def parse_text(
    text: str,
    name: str,
    ctx: ImportContext,
    fmt: str = "auto",
    mapping: generic_csv.ColumnMapping | None = None,
) -> ParseResult:
    """Parse decoded text in format ``fmt`` (``auto`` detects it)."""
    if fmt not in FORMATS:
        raise ImportFormatError(f"format {fmt!r} is not one of {list(FORMATS)}")
    detected = detect_format(text, name)
    if fmt == "auto":
        fmt = detected
        if fmt == "csv" and mapping is None:
            raise ImportFormatError(
                f"{name} is a CSV but not a MyLA311 export; pass a column mapping "
                "(--mapping FILE) naming external_id, service_code and requested_at"
            )
    if fmt == "open311":
        if detected != "open311":
            raise ImportFormatError(f"{name} is not an Open311 GeoReport v2 JSON document")
        return open311.parse_items(json.loads(text), ctx)
    if detected == "open311":
        raise ImportFormatError(f"{name} is JSON; expected a CSV for format {fmt!r}")
    reader = csv.DictReader(io.StringIO(text))
    try:
        if fmt == "myla311":
            if not myla311.is_myla311_header(reader.fieldnames or []):
                raise ImportFormatError(
                    f"{name} has no MyLA311 header (srnumber, requesttype, createddate)"
                )
            return myla311.parse_rows(reader, ctx)
        if mapping is None:
            raise ImportFormatError("format 'csv' needs a column mapping (--mapping FILE)")
        return generic_csv.parse_rows(reader, reader.fieldnames or [], mapping, ctx)
    except csv.Error as err:
        raise ImportFormatError(f"{name} is not a readable CSV: {err}") from None


def read_file(
    path: Path,
    ctx: ImportContext,
    fmt: str = "auto",
    mapping: generic_csv.ColumnMapping | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> ParseResult:
    """Read and parse a request file from disk.

    Raises
    ------
    ImportFormatError
        When the file is missing, too large, binary, not UTF-8, or not CSV/JSON.
    """
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ImportFormatError(f"{path} cannot be read: {err.strerror}") from None
    if size > max_bytes:
        raise ImportFormatError(
            f"{path} is {size / 1e6:.0f} MB; the largest file accepted is {max_bytes / 1e6:.0f} MB"
        )
    data = path.read_bytes()
    return parse_text(decode_text(data, str(path)), str(path), ctx, fmt, mapping)


@dataclass(frozen=True)
class StreamedFile:
    """A request file checked and opened for streaming: its format, its rows, chunks.

    Attributes
    ----------
    format
        ``myla311``, ``open311`` or ``csv``.
    rows
        Data rows in the file (lines after the header for CSV, elements for JSON).
    chunks
        The parse results, :data:`CHUNK_ROWS` rows at a time, line numbers of the file.
    """

    format: str
    rows: int
    chunks: Iterator[ParseResult]


def _check_stream(path: Path, max_bytes: int) -> tuple[int, bytes]:
    """Check the whole file before anything is imported: size, binary, UTF-8, NULs.

    Returns the number of lines and the first bytes. Reads in blocks (bounded memory).
    """
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as err:
        raise ImportFormatError(f"{path} cannot be read: {err.strerror}") from None
    if size > max_bytes:
        fh.close()
        raise ImportFormatError(
            f"{path} is {size / 1e6:.0f} MB; the largest file accepted is {max_bytes / 1e6:.0f} MB"
        )
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    offset = 0
    head = b""
    with fh:
        while True:
            block = fh.read(1 << 20)
            if not block:
                break
            if not head:
                head = block[:65536]
                for magic, what in _BINARY_MAGIC.items():
                    if block.startswith(magic):
                        raise ImportFormatError(
                            f"{path} is {what}; expected a CSV or JSON text file")
            if b"\x00" in block:
                raise ImportFormatError(
                    f"{path} contains NUL bytes; expected a CSV or JSON text file")
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                raise ImportFormatError(
                    f"{path} is not UTF-8 text (byte {offset + err.start} is "
                    f"{block[err.start]:#04x}); save it as UTF-8 CSV or JSON") from None
            lines += block.count(b"\n")
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportFormatError(
                f"{path} ends in the middle of a UTF-8 character; save it as UTF-8") from None
    return lines, head


def stream_file(
    path: Path,
    ctx: ImportContext,
    fmt: str = "auto",
    mapping: generic_csv.ColumnMapping | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    max_bytes: int = MAX_STREAM_BYTES,
) -> StreamedFile:
    """Check a request file whole, then parse it chunk by chunk (bounded memory).

    Every check that can refuse the file (size, binary, encoding, format, header) runs
    before the first chunk is handed out, so a refused file changes nothing.

    Raises
    ------
    ImportFormatError
        When the file is missing, too large, binary, not UTF-8, or not CSV/JSON.
    """
    if fmt not in FORMATS:
        raise ImportFormatError(f"format {fmt!r} is not one of {list(FORMATS)}")
    lines, head = _check_stream(path, max_bytes)
    first = head.decode("utf-8-sig", errors="ignore").lstrip()
    if first.startswith(("[", "{")):
        parsed = read_file(path, ctx, fmt, mapping)
        records = parsed.records

        def json_chunks() -> Iterator[ParseResult]:
            yield ParseResult(parsed.format, records[:chunk_rows], list(parsed.rejects),
                              parsed.rows_read)
            for start in range(chunk_rows, len(records), chunk_rows):
                yield ParseResult(parsed.format, records[start : start + chunk_rows])

        return StreamedFile(parsed.format, parsed.rows_read, json_chunks())
    header_line = first.splitlines()[0] if first else ""
    detected = detect_format(header_line + "\n", str(path)) if header_line else "csv"
    if not header_line:
        raise ImportFormatError(f"{path} is empty")
    if fmt == "auto":
        fmt = detected
        if fmt == "csv" and mapping is None:
            raise ImportFormatError(
                f"{path} is a CSV but not a MyLA311 export; pass a column mapping "
                "(--mapping FILE) naming external_id, service_code and requested_at"
            )
    if fmt == "open311":
        raise ImportFormatError(f"{path} is not an Open311 GeoReport v2 JSON document")
    if fmt == "myla311" and detected != "myla311":
        raise ImportFormatError(
            f"{path} has no MyLA311 header (srnumber, requesttype, createddate)")
    if fmt == "csv" and mapping is None:
        raise ImportFormatError("format 'csv' needs a column mapping (--mapping FILE)")
    chosen = fmt

    def csv_chunks() -> Iterator[ParseResult]:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            line = 2
            try:
                while True:
                    rows = list(itertools.islice(reader, chunk_rows))
                    if not rows:
                        return
                    if chosen == "myla311":
                        yield myla311.parse_rows(rows, ctx, first_line=line)
                    elif mapping is not None:
                        yield generic_csv.parse_rows(rows, header, mapping, ctx,
                                                     first_line=line)
                    line += len(rows)
            except csv.Error as err:
                raise ImportFormatError(f"{path} is not a readable CSV: {err}") from None

    return StreamedFile(chosen, max(0, lines - 1), csv_chunks())
