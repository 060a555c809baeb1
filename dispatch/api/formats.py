"""GeoReport v2 documents as JSON and XML (the specification's two formats).

Pure shaping: a document is plain data (dicts, lists, strings, numbers, ``None``); each
kind of document has its XML root and item element names, as the specification's
examples write them (``<service_requests><request>...``, ``<services><service>...``,
``<errors><error>...``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

#: (root element, item element) of each kind of list document.
LIST_ELEMENTS: Mapping[str, tuple[str, str]] = {
    "requests": ("service_requests", "request"),
    "services": ("services", "service"),
    "errors": ("errors", "error"),
}
#: Item element of lists nested inside a document (``endpoints`` holds ``endpoint`` ...).
NESTED_ITEMS: Mapping[str, str] = {
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
FORMATS = ("xml", "json")
MEDIA_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
_SUFFIX = re.compile(r"^(?P<name>.+?)\.(?P<fmt>[A-Za-z]+)$")
#: Characters XML 1.0 cannot hold at all (control characters other than tab, LF, CR).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def split_format(segment: str) -> tuple[str, str]:
    """Split ``requests.json`` into ``("requests", "json")``; no suffix means XML.

    Only ``.json`` and ``.xml`` count as formats: ``1-123.5`` keeps its dot.
    """
    match = _SUFFIX.match(segment)
    if match and match.group("fmt").lower() in FORMATS:
        return match.group("name"), match.group("fmt").lower()
    return segment, "xml"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return _NOT_XML.sub("", str(value))


def _fill(parent: ET.Element, value: Any, name: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _add(parent, str(key), item)
    elif isinstance(value, list | tuple):
        item_name = NESTED_ITEMS.get(name, "item")
        for item in value:
            child = ET.SubElement(parent, item_name)
            _fill(child, item, item_name)
    else:
        parent.text = _text(value)


def _add(parent: ET.Element, name: str, value: Any) -> None:
    child = ET.SubElement(parent, name)
    _fill(child, value, name)


def to_xml(kind: str, document: Any) -> bytes:
    """Return a document as XML.

    Parameters
    ----------
    kind
        ``requests``, ``services``, ``errors`` (lists, see :data:`LIST_ELEMENTS`) or the
        root element of a single document (``discovery``, ``service_definition``).
    document
        The list or mapping.
    """
    if kind in LIST_ELEMENTS:
        root_name, item_name = LIST_ELEMENTS[kind]
        root = ET.Element(root_name)
        for item in document:
            child = ET.SubElement(root, item_name)
            _fill(child, item, item_name)
    else:
        root = ET.Element(kind)
        _fill(root, document, kind)
    body = bytes(ET.tostring(root, encoding="utf-8", xml_declaration=False))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def to_json(document: Any) -> bytes:
    """Return a document as compact UTF-8 JSON."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render(kind: str, document: Any, fmt: str) -> tuple[bytes, str]:
    """Return ``(body, media type)`` of a document in ``fmt`` (``json`` or ``xml``)."""
    if fmt == "json":
        return to_json(document), MEDIA_TYPES["json"]
    return to_xml(kind, document), MEDIA_TYPES["xml"]


def errors(code: int, description: str) -> list[dict[str, Any]]:
    """Return the specification's error document: ``[{"code": 400, "description": ...}]``."""
    return [{"code": code, "description": description}]
