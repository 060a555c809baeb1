"""Reading a request file from disk: size and type checks, format detection, dispatch.

This is the I/O adapter of the importers; everything it calls is pure shaping.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from dispatch.errors import ImportFormatError
from dispatch.importers import generic_csv, myla311, open311
from dispatch.importers.common import ImportContext, ParseResult

FORMATS = ("auto", "myla311", "open311", "csv")
#: Largest file accepted, in bytes.
MAX_FILE_BYTES = 200 * 1024 * 1024

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
