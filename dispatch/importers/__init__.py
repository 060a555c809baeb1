"""Readers of incoming request files: pure shaping from rows to :class:`ServiceRequest`.

Each reader turns the rows of one layout into :class:`ParsedRecord` objects and
:class:`Reject` entries (line, field, reason); nothing here touches the store.
"""

from dispatch.importers.common import ImportContext, ParsedRecord, ParseResult, Reject
from dispatch.importers.detect import (
    CHUNK_ROWS,
    FORMATS,
    StreamedFile,
    detect_format,
    read_file,
    stream_file,
)

__all__ = [
    "CHUNK_ROWS",
    "FORMATS",
    "ImportContext",
    "ParseResult",
    "ParsedRecord",
    "Reject",
    "StreamedFile",
    "detect_format",
    "read_file",
    "stream_file",
]
