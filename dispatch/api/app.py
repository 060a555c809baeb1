"""The Open311 GeoReport v2 server: a Starlette (ASGI) app over the Open311 services.

Endpoints, under ``/open311/v2`` (each in ``.json`` or ``.xml``; no suffix is XML, the
specification's default):

* ``GET discovery``: what this endpoint serves;
* ``GET services``, ``GET services/{code}``: one service per category of the city pack;
* ``GET requests``: the filters ``service_request_id``, ``service_code``,
  ``start_date``, ``end_date``, ``status``; the last 90 days and at most 1,000 requests
  by default, ``page``/``page_size`` beyond (a ``Link: <...>; rel="next"`` header says
  when there is more);
* ``GET requests/{id}``, ``GET tokens/{token}``;
* ``POST requests`` (form-encoded, with ``api_key``): the phone intake's service.

``GET /health`` answers monitors. Errors are the specification's error documents
(``[{"code": 400, "description": "..."}]``), always one sentence, never a traceback.
Limits: the body size, a per-key rate for submissions and a per-client rate for every
call (both per process), bounded pages. One JSON log line per request
(``curbside.api``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatch import logs
from dispatch.api.formats import errors, render, split_format
from dispatch.api.limits import BodyTooLargeError, RateLimiter
from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack
from dispatch.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConcurrentEditError,
    DispatchError,
    NotFoundError,
    StoreBusyError,
    StoreUnavailableError,
    ValidationError,
)
from dispatch.services import apikeys
from dispatch.services import open311 as svc
from dispatch.store import Engine, UnitOfWork
from geo.errors import GeoError
from geo.geocoding import Geocoder

_LOG = logs.get("api")
#: Who reads anonymously (the event log never sees this one: reads write nothing).
READER = Principal("open311", Role.ANONYMOUS)
#: When this API's shape last changed (discovery's ``changeset``).
CHANGESET = datetime(2026, 12, 5, tzinfo=UTC)


@dataclass(frozen=True)
class ApiSettings:
    """Settings of the server.

    Parameters
    ----------
    base_path
        Where the GeoReport v2 endpoints live.
    max_body_bytes
        Largest request body accepted (a POST's form).
    client_rate_per_min
        Calls one client address may make per minute (every endpoint).
    public_url
        The endpoint's address as clients reach it, for discovery (default: as asked).
    """

    base_path: str = "/open311/v2"
    max_body_bytes: int = 64 * 1024
    client_rate_per_min: int = 1200
    public_url: str | None = None


class _AnswerError(Exception):
    """An error answer: HTTP status and one sentence."""

    def __init__(self, status: int, description: str, headers: Mapping[str, str] | None = None,
                 ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = dict(headers or {})


def _status_of(err: BaseException) -> int:
    if isinstance(err, BodyTooLargeError):
        return 413
    if isinstance(err, NotFoundError):
        return 404
    if isinstance(err, AuthenticationError | AccessDeniedError):
        return 403
    if isinstance(err, StoreBusyError | StoreUnavailableError):
        return 503
    if isinstance(err, ConcurrentEditError):
        return 409
    if isinstance(err, ValidationError | DispatchError | GeoError):
        return 400
    return 500


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


class AccessLog:
    """ASGI middleware: one structured log line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and log method, path, status, time and client."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("unknown", 0)
            state = scope.get("state") or {}
            code = status["code"]
            logs.log(_LOG, logging.WARNING if code >= 500 else logging.INFO, "request",
                     method=scope.get("method"), path=scope.get("path"),
                     query=(scope.get("query_string") or b"").decode("latin-1")[:300],
                     status=code, ms=round((time.perf_counter() - started) * 1000, 1),
                     client=client[0], key=state.get("key_prefix"))


def create_app(
    engine: Engine,
    pack: CityPack,
    *,
    geocoder: Geocoder | None = None,
    settings: ApiSettings | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """Return the ASGI app of the Open311 server.

    Parameters
    ----------
    engine
        The store.
    pack
        The city pack (services, time zone, city limit, districts).
    geocoder
        Locates submitted addresses without a pin (``None``: they wait in "Needs
        location").
    settings
        Limits and paths.
    clock
        Monotonic seconds for the rate limits (tests pass a fake).
    """
    cfg = settings or ApiSettings()
    per_key = RateLimiter(60.0, clock)
    per_client = RateLimiter(60.0, clock)
    base = cfg.base_path.rstrip("/")

    def read(fn: Callable[[UnitOfWork], Any]) -> Any:
        with UnitOfWork(engine, READER) as uow:
            return fn(uow)

    async def answer(request: Request, kind: str, fmt: str,
                     work: Callable[[], Awaitable[tuple[Any, Mapping[str, str]]]]) -> Response:
        try:
            wait = per_client.allow(_client(request), cfg.client_rate_per_min)
            if wait is not None:
                raise _AnswerError(429, f"too many calls from {_client(request)}; wait "
                                   f"{wait:.0f} s", {"Retry-After": str(max(1, round(wait)))})
            document, headers = await work()
            body, media = render(kind, document, fmt)
            return Response(body, 200, headers=dict(headers), media_type=media)
        except _AnswerError as err:
            return error_response(fmt, err.status, err.description, err.headers)
        except Exception as err:
            status = _status_of(err)
            if status == 500:
                logs.log(_LOG, logging.ERROR, "failed", path=request.url.path,
                         error=f"{type(err).__name__}: {err}")
                return error_response(fmt, 500, "the server could not answer; the service "
                                                "center's log has the details")
            return error_response(fmt, status, str(err))

    # ------------------------------------------------------------------- endpoints

    async def discovery(request: Request) -> Response:
        _, fmt = split_format(request.path_params["name"])

        async def work() -> tuple[Any, Mapping[str, str]]:
            url = cfg.public_url or str(request.base_url).rstrip("/") + base
            return svc.discovery(pack, url, CHANGESET), {}

        return await answer(request, "discovery", fmt, work)

    async def services(request: Request) -> Response:
        _, fmt = split_format(request.path_params["name"])

        async def work() -> tuple[Any, Mapping[str, str]]:
            return svc.service_list(pack), {}

        return await answer(request, "services", fmt, work)

    async def service_definition(request: Request) -> Response:
        code, fmt = split_format(request.path_params["code"])

        async def work() -> tuple[Any, Mapping[str, str]]:
            return svc.service_definition(pack, code), {}

        return await answer(request, "service_definition", fmt, work)

    async def requests_list(request: Request) -> Response:
        _, fmt = split_format(request.path_params["name"])
        if request.method == "POST":
            return await submit(request, fmt)

        async def work() -> tuple[Any, Mapping[str, str]]:
            params = dict(request.query_params)
            _check_jurisdiction(params, pack)
            query = svc.parse_request_query(params, pack)
            page = await run_in_threadpool(read, lambda uow: svc.find_requests(uow, pack, query))
            headers = {}
            if page.has_more:
                nxt = {**params, "page": str(page.page + 1), "page_size": str(page.page_size)}
                if page.start is not None and page.end is not None and not params.get(
                        "service_request_id"):
                    nxt.setdefault("start_date", page.start.isoformat())
                    nxt.setdefault("end_date", page.end.isoformat())
                headers["Link"] = f'<{request.url.replace(query=urlencode(nxt))}>; rel="next"'
            return page.requests, headers

        return await answer(request, "requests", fmt, work)

    async def request_one(request: Request) -> Response:
        ident, fmt = split_format(request.path_params["ident"])

        async def work() -> tuple[Any, Mapping[str, str]]:
            _check_jurisdiction(dict(request.query_params), pack)
            doc = await run_in_threadpool(read, lambda uow: svc.get_request(uow, pack, ident))
            return doc, {}

        return await answer(request, "requests", fmt, work)

    async def token(request: Request) -> Response:
        ident, fmt = split_format(request.path_params["ident"])

        async def work() -> tuple[Any, Mapping[str, str]]:
            found = await run_in_threadpool(read, lambda uow: svc.token_lookup(uow, ident))
            return [found], {}

        return await answer(request, "requests", fmt, work)

    async def submit(request: Request, fmt: str) -> Response:
        async def work() -> tuple[Any, Mapping[str, str]]:
            fields = await _read_form(request, cfg.max_body_bytes)
            _check_jurisdiction(fields, pack)
            key = fields.get("api_key") or request.headers.get("x-api-key", "")
            client = await run_in_threadpool(
                read, lambda uow: apikeys.authenticate_api_key(uow, key))
            request.scope.setdefault("state", {})["key_prefix"] = client.prefix
            wait = per_key.allow(client.key_id, client.rate_per_min)
            if wait is not None:
                raise _AnswerError(429, f"API key {client.prefix}... made {client.rate_per_min} "
                                   f"submissions this minute; wait {wait:.0f} s",
                              {"Retry-After": str(max(1, round(wait)))})

            def run() -> svc.Submission:
                with UnitOfWork(engine, client.principal) as uow:
                    return svc.submit_request(uow, pack, fields, geocoder)

            made = await run_in_threadpool(run)
            return [made.as_open311()], {}

        return await answer(request, "requests", fmt, work)

    async def health(request: Request) -> Response:
        async def work() -> tuple[Any, Mapping[str, str]]:
            return await run_in_threadpool(read, svc.health), {}

        return await answer(request, "health", "json", work)

    async def not_found(request: Request, exc: Exception) -> Response:
        last = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        _, fmt = split_format(last)
        status = int(getattr(exc, "status_code", 404))
        if status == 405:
            return error_response(fmt, 405, f"{request.method} is not allowed on "
                                            f"{request.url.path}")
        return error_response(fmt, 404, f"{request.url.path} is not an endpoint of this "
                                        f"server; GET {base}/discovery.json lists them")

    routes = [Route("/health", health, methods=["GET"])]
    for name, endpoint, methods in (("discovery", discovery, ["GET"]),
                                    ("services", services, ["GET"]),
                                    ("requests", requests_list, ["GET", "POST"])):
        for suffix in ("", ".json", ".xml"):
            routes.append(Route(f"{base}/{name}{suffix}", _with_name(endpoint, name + suffix),
                                methods=methods))
    routes += [
        Route(base + "/services/{code}", service_definition, methods=["GET"]),
        Route(base + "/requests/{ident}", request_one, methods=["GET"]),
        Route(base + "/tokens/{ident}", token, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.add_middleware(AccessLog)
    return app


def _with_name(endpoint: Callable[[Request], Awaitable[Response]], name: str,
               ) -> Callable[[Request], Awaitable[Response]]:
    async def call(request: Request) -> Response:
        request.path_params["name"] = name
        return await endpoint(request)

    return call


def error_response(fmt: str, status: int, description: str,
                   headers: Mapping[str, str] | None = None) -> Response:
    """Return the specification's error document with HTTP ``status``."""
    body, media = render("errors", errors(status, description), fmt)
    return Response(body, status, headers=dict(headers or {}), media_type=media)


def _check_jurisdiction(params: Mapping[str, str], pack: CityPack) -> None:
    value = (params.get("jurisdiction_id") or "").strip()
    if value and value != pack.name:
        raise NotFoundError(f"jurisdiction_id {value[:40]!r} is not served here; this endpoint "
                            f"serves {pack.name!r}")


async def _read_form(request: Request, max_bytes: int) -> dict[str, str]:
    """Read a form-encoded body of at most ``max_bytes`` bytes.

    Raises
    ------
    BodyTooLargeError
        When the body (or its declared length) is larger.
    ValidationError
        For another content type, or bytes that are not UTF-8.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise BodyTooLargeError(f"the request body is {int(length)} bytes; at most {max_bytes}")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", ""):
        raise ValidationError(f"content type {kind!r} is not accepted; expected "
                              "application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise BodyTooLargeError(f"the request body is over {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("the request body is not UTF-8") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=200, strict_parsing=False)
    except ValueError as err:
        raise ValidationError(f"the request body is not a form: {err}") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields
