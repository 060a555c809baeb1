"""An Open311 GeoReport v2 client: pulls ``requests.json`` of an endpoint in date windows.

As FixMyStreet's back-end fetch does, the time since the last pull is cut into windows
(``start_date``/``end_date``), each asked separately: a window whose answer fills the
server's limit (1,000 requests) and names no next page is split in two and asked again,
so nothing beyond a limit is silently lost. Pages a server announces with a
``Link: <...>; rel="next"`` header (Curbside's own server does) are followed.

The HTTP part is one function, :func:`http_get_json` (urllib, http and https only, a
timeout, a size limit); tests pass their own to :func:`pull_windows`.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from dispatch.errors import DispatchError, ImportFormatError, ValidationError

#: Answers larger than this are refused (a server gone wrong, not a day of requests).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Pages followed at most within one window.
MAX_PAGES = 1000
#: The specification's default limit of one answer: an answer this full may be cut.
SERVER_LIMIT = 1000
#: Windows are never split below this.
MIN_WINDOW = timedelta(seconds=1)


@dataclass(frozen=True)
class Answer:
    """One answer of a server: its requests and the next page, if it names one."""

    items: list[dict[str, Any]]
    next_url: str | None = None


#: ``fetch(url, params) -> Answer``: how the client asks (``params`` empty for a next page).
Fetch = Callable[[str, Mapping[str, str]], Answer]


@dataclass
class Window:
    """The requests of one date window (``start`` and ``end`` inclusive, as the spec)."""

    start: datetime
    end: datetime
    items: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0


def requests_url(endpoint: str) -> str:
    """Return the ``requests.json`` URL of an endpoint (its root or that URL itself).

    Raises
    ------
    DispatchError
        For a URL that is not http(s).
    """
    text = endpoint.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"Open311 endpoint {text[:80]!r} is not an http(s) URL; expected "
                            "e.g. https://city.example/open311/v2")
    path = parts.path.rstrip("/")
    for tail in ("/requests.json", "/requests.xml", "/requests", "/discovery.json",
                 "/services.json"):
        if path.endswith(tail):
            path = path[: -len(tail)]
            break
    return parts._replace(path=path + "/requests.json", query="", fragment="").geturl()


_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?', re.IGNORECASE)


def _error_words(raw: bytes) -> str:
    try:
        doc = json.loads(raw.decode("utf-8"))
        if isinstance(doc, list) and doc and isinstance(doc[0], dict):
            return str(doc[0].get("description") or doc[0])[:200]
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    return raw[:200].decode("utf-8", "replace").strip() or "no explanation"


def http_get_json(url: str, params: Mapping[str, str], *, timeout_s: float = 60.0,
                  max_bytes: int = MAX_ANSWER_BYTES, user_agent: str = "Curbside") -> Answer:
    """GET ``url`` with ``params`` and read a GeoReport v2 request list.

    Raises
    ------
    DispatchError
        When the server cannot be reached, answers an error (its description is
        quoted), or answers too much.
    ImportFormatError
        When the answer is not a JSON list of requests.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValidationError(f"{url[:80]!r} is not an http(s) URL")
    full = url + ("?" + urlencode(params) if params else "")
    req = urllib.request.Request(full, headers={"Accept": "application/json",
                                                "User-Agent": user_agent})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # http(s) only, checked above
            raw = resp.read(max_bytes + 1)
            link = resp.headers.get("Link") or ""
    except urllib.error.HTTPError as err:
        raise DispatchError(f"{url} answered {err.code}: {_error_words(err.read(4096))}"
                            ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DispatchError(f"could not reach {url}: {reason}") from None
    if len(raw) > max_bytes:
        raise DispatchError(f"{url} answered more than {max_bytes} bytes for one window")
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ImportFormatError(f"{url} did not answer JSON ({err}); expected a GeoReport v2 "
                                "request list") from None
    items = doc.get("service_requests") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ImportFormatError(f"{url} answered JSON that is not a request list; expected "
                                "[{\"service_request_id\": ...}, ...]")
    match = _LINK_NEXT.search(link)
    return Answer(items, match.group(1) if match else None)


def _stamp(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds")


def pull_windows(
    url: str,
    since: datetime,
    until: datetime,
    *,
    tz: ZoneInfo,
    service_code: str | None = None,
    window: timedelta = timedelta(days=1),
    limit: int = SERVER_LIMIT,
    fetch: Fetch | None = None,
) -> Iterator[Window]:
    """Yield the requests of ``[since, until]`` window by window, oldest first.

    Parameters
    ----------
    url
        The ``requests.json`` URL (see :func:`requests_url`).
    since, until
        The span to pull (aware datetimes).
    tz
        The city's time zone (dates are sent with its offset).
    service_code
        Only this service.
    window
        Length of the first windows.
    limit
        An answer with this many requests and no next page may be cut: its window is
        split.
    fetch
        How to ask (default :func:`http_get_json`).

    Raises
    ------
    DispatchError
        When a window the size of :data:`MIN_WINDOW` still fills the limit, or a server
        keeps announcing pages.
    """
    if until < since:
        raise ValidationError(f"--until {until.isoformat()} is before --since {since.isoformat()}")
    if window <= timedelta(0):
        raise ValidationError(f"window {window} must be positive")
    ask = fetch or http_get_json
    todo: list[tuple[datetime, datetime]] = []
    start = since
    while start <= until:
        end = min(start + window, until)
        todo.append((start, end))
        if end >= until:
            break
        start = end
    todo.reverse()  # a stack: oldest window on top
    while todo:
        start, end = todo.pop()
        params = {"start_date": _stamp(start, tz), "end_date": _stamp(end, tz)}
        if service_code:
            params["service_code"] = service_code
        answer = ask(url, params)
        found = Window(start, end, list(answer.items), 1)
        while answer.next_url:
            if found.pages >= MAX_PAGES:
                raise DispatchError(f"{url} announced more than {MAX_PAGES} pages for "
                                    f"{params['start_date']}..{params['end_date']}")
            answer = ask(answer.next_url, {})
            found.items.extend(answer.items)
            found.pages += 1
        if found.pages == 1 and len(found.items) >= limit:
            if end - start <= MIN_WINDOW:
                raise DispatchError(
                    f"{url} answered {len(found.items)} requests (its limit) for "
                    f"{params['start_date']}..{params['end_date']}, too many to split further")
            middle = start + (end - start) / 2
            todo.append((middle, end))
            todo.append((start, middle))
            continue
        yield found
