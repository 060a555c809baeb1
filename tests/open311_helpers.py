"""Helpers of the Open311 tests: a real server on localhost, an HTTP client, the schemas.

The server is uvicorn on a free port of 127.0.0.1, in a thread of the test process; the
client is urllib, as any Open311 client would be. Every JSON answer is validated against
a GeoReport v2 schema: the request schemas the project ships (``data/open311``, from
open311/schema-validation) and, for the other documents, the ones in ``tests/data/open311``
written from the specification. Formats are checked for real (``date-time`` as RFC 3339,
``uri`` with a scheme and a host), not skipped as jsonschema does without extra packages.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree as ET

import jsonschema
import uvicorn

from dispatch.citypack import CityPack
from dispatch.services.clock import start_demo_clock
from dispatch.services.geocoding import city_geocoder
from dispatch.services.imports import import_requests
from dispatch.services.setup import load_roster
from dispatch.store import Engine, UnitOfWork, make_engine, migrate

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_SCHEMAS = ROOT / "data" / "open311"
TEST_SCHEMAS = Path(__file__).resolve().parent / "data" / "open311"

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@FORMATS.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc or value != value.strip():
        raise ValueError(f"{value!r} is not an absolute URI")
    return True


def _schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def validators() -> dict[str, jsonschema.Draft7Validator]:
    """Return a validator per kind of answer."""
    item = _schema(SHIPPED_SCHEMAS / "georeport_v2_request.schema.json")
    many = _schema(SHIPPED_SCHEMAS / "georeport_v2_requests.schema.json")
    many["items"] = item  # resolve the $ref to the sibling file
    out = {"requests": jsonschema.Draft7Validator(many, format_checker=FORMATS)}
    for kind in ("services", "service_definition", "discovery", "errors", "post_response",
                 "tokens"):
        out[kind] = jsonschema.Draft7Validator(_schema(TEST_SCHEMAS / f"{kind}.schema.json"),
                                               format_checker=FORMATS)
    for validator in out.values():
        validator.check_schema(validator.schema)
    return out


VALIDATORS = validators()


@dataclass
class Reply:
    """An HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        return json.loads(self.body.decode("utf-8"))

    @property
    def xml(self) -> ET.Element:
        assert self.headers.get("content-type", "").startswith("text/xml"), self.headers
        assert self.body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
        return ET.fromstring(self.body)

    def valid(self, kind: str) -> Any:
        """Return the JSON document after validating it against the schema of ``kind``."""
        doc = self.json
        VALIDATORS[kind].validate(doc)
        return doc


def call(url: str, *, data: Mapping[str, str] | bytes | None = None,
         headers: Mapping[str, str] | None = None, method: str | None = None,
         timeout_s: float = 30.0) -> Reply:
    """Send one HTTP request and return the answer, error statuses included."""
    body = data if isinstance(data, bytes | None) else urlencode(data).encode("utf-8")
    req = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
    if body is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                         resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def xml_items(root: ET.Element) -> list[dict[str, str]]:
    """Return the child elements of each item of an XML list answer as text."""
    return [{child.tag: child.text or "" for child in item} for item in root]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free localhost port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def make_store(path: Path, pack: CityPack, *, demo: bool) -> Engine:
    """Return a migrated SQLite store with the pack's roster (and its demo, if asked)."""
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with UnitOfWork(engine, actor="test:init") as uow:
        load_roster(uow, pack)
    if demo:
        assert pack.demo_requests is not None
        with UnitOfWork(engine, actor="test:init") as uow:
            import_requests(uow, pack.demo_requests, pack, geocoder=city_geocoder(pack))
        with UnitOfWork(engine, actor="test:init") as uow:
            start_demo_clock(uow, pack)
    return engine
