"""Optional online geocoding providers, used only when the offline answer is weak.

Off by default: nothing here runs unless a :class:`FallbackGeocoder` is built with
providers.  Providers follow geopy's interface (``geocode(query, exactly_one=True)``
returning a :class:`geopy.location.Location` or ``None``), so any geopy geocoder fits;
:func:`make_provider` builds the three supported ones:

* ``nominatim``: OpenStreetMap Nominatim through geopy, wrapped in geopy's
  :class:`~geopy.extra.rate_limiter.RateLimiter` at one request per second, with a real
  user agent (the Nominatim usage policy requires both);
* ``arcgis``: Esri's World geocoder through geopy;
* ``census``: the US Census Bureau geocoder (one-line address endpoint; geopy has no
  class for it, so :class:`CensusGeocoder` speaks geopy's interface over urllib).

Answers are kept in a persistent :class:`GeocodeCache` (sqlite3) so a query is sent
at most once per provider.  Tests never touch the network: they pass a fake provider.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from geopy.location import Location

from geo.errors import GeocodeError
from geo.geocoder import GeocodeResult, OfflineGeocoder, Precision

__all__ = [
    "CensusGeocoder",
    "FallbackGeocoder",
    "GeocodeCache",
    "OnlineProvider",
    "default_cache_path",
    "make_provider",
]

_RANK = {p: i for i, p in enumerate(Precision)}


class OnlineProvider(Protocol):
    """What a provider must offer: geopy's ``geocode``."""

    def geocode(self, query: str, exactly_one: bool = True) -> Any:
        """Return a geopy Location (or None) for ``query``."""
        ...


def default_cache_path() -> Path:
    """``~/.cache/curbside/geocode.sqlite3`` (respects ``XDG_CACHE_HOME``)."""
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "curbside" / "geocode.sqlite3"


class GeocodeCache:
    """Persistent (provider, query) -> answer cache in one sqlite3 file.

    Parameters
    ----------
    path : pathlib.Path or ":memory:"
        Database file; parent directories are created.
    """

    def __init__(self, path: Path | str = ":memory:") -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path))
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers ("
            " provider TEXT NOT NULL, query TEXT NOT NULL, answer TEXT,"
            " PRIMARY KEY (provider, query))"
        )
        self._db.commit()

    def get(self, provider: str, query: str) -> tuple[bool, dict[str, Any] | None]:
        """Return ``(found, answer)``; ``answer`` is None for a remembered miss."""
        row = self._db.execute(
            "SELECT answer FROM answers WHERE provider = ? AND query = ?", (provider, query)
        ).fetchone()
        if row is None:
            return False, None
        return True, (json.loads(row[0]) if row[0] is not None else None)

    def put(self, provider: str, query: str, answer: dict[str, Any] | None) -> None:
        """Remember an answer (None remembers that the provider found nothing)."""
        self._db.execute(
            "INSERT OR REPLACE INTO answers (provider, query, answer) VALUES (?, ?, ?)",
            (provider, query, json.dumps(answer) if answer is not None else None),
        )
        self._db.commit()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()


class CensusGeocoder:
    """US Census Bureau one-line geocoder with geopy's ``geocode`` interface.

    Parameters
    ----------
    benchmark : str
        Census benchmark name.
    timeout_s : float
        HTTP timeout.
    opener : callable, optional
        ``opener(url, timeout) -> bytes``; the network seam (tests pass a fake).
    """

    URL = "https://geocoding.geo.census.gov/geocoder/locations/onelineaddress"

    def __init__(
        self,
        benchmark: str = "Public_AR_Current",
        timeout_s: float = 10.0,
        opener: Callable[[str, float], bytes] | None = None,
    ) -> None:
        self.benchmark = benchmark
        self.timeout_s = timeout_s
        self._open = opener or _urlopen

    def geocode(self, query: str, exactly_one: bool = True) -> Location | list[Location] | None:
        """Geocode one address; ``None`` when the Census finds no match."""
        params = urllib.parse.urlencode(
            {"address": query, "benchmark": self.benchmark, "format": "json"}
        )
        payload = json.loads(self._open(f"{self.URL}?{params}", self.timeout_s))
        matches = payload.get("result", {}).get("addressMatches", [])
        locs = [
            # (lon, lat) -> (lat, lon): Census gives x=lon, y=lat; geopy wants (lat, lon)
            Location(m["matchedAddress"], (m["coordinates"]["y"], m["coordinates"]["x"]), m)
            for m in matches
        ]
        if not locs:
            return None
        return locs[0] if exactly_one else locs


def _urlopen(url: str, timeout: float) -> bytes:  # pragma: no cover - network
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read())


def make_provider(
    name: str,
    *,
    user_agent: str | None = None,
    min_delay_seconds: float = 1.0,
    timeout_s: float = 10.0,
) -> OnlineProvider:
    """Build one of the supported online providers.

    Parameters
    ----------
    name : {"nominatim", "arcgis", "census"}
        Provider.
    user_agent : str, optional
        Required for Nominatim: a real application name with contact, e.g.
        ``"curbside/0.1 (public-works@example.org)"``.
    min_delay_seconds : float
        Nominatim rate limit (its policy: at most one request per second).
    timeout_s : float
        HTTP timeout.

    Returns
    -------
    OnlineProvider
        Object with geopy's ``geocode(query, exactly_one=True)``.
    """
    if name == "nominatim":
        if not user_agent or "geopy" in user_agent.lower():
            raise GeocodeError(
                "Nominatim needs a real user_agent naming the application and a contact; "
                f"got {user_agent!r}"
            )
        if min_delay_seconds < 1.0:
            raise GeocodeError(
                f"Nominatim allows at most 1 request/s; min_delay_seconds={min_delay_seconds}"
            )
        from geopy.extra.rate_limiter import RateLimiter
        from geopy.geocoders import Nominatim

        nom = Nominatim(user_agent=user_agent, timeout=timeout_s)
        return _Limited(RateLimiter(nom.geocode, min_delay_seconds=min_delay_seconds))
    if name == "arcgis":
        from geopy.geocoders import ArcGIS

        arcgis = ArcGIS(timeout=timeout_s)
        # ask for the match type so answers get an honest precision (PointAddress, ...)
        return _Limited(lambda q, exactly_one=True: arcgis.geocode(
            q, exactly_one=exactly_one, out_fields=["Addr_type"]
        ))  # fmt: skip
    if name == "census":
        return CensusGeocoder(timeout_s=timeout_s)
    raise GeocodeError(f"online provider {name!r} is not one of 'nominatim', 'arcgis', 'census'")


class _Limited:
    """Expose a RateLimiter-wrapped ``geocode`` as a provider."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self._func = func

    def geocode(self, query: str, exactly_one: bool = True) -> Any:
        return self._func(query, exactly_one=exactly_one)


def _precision_of(provider: str, raw: dict[str, Any]) -> Precision:
    """Precision an online answer stands for, from the provider's own fields."""
    if provider == "arcgis":
        kind = str(raw.get("attributes", {}).get("Addr_type", raw.get("Addr_type", "")))
        return {
            "PointAddress": Precision.POINT,
            "Subaddress": Precision.POINT,
            "StreetAddress": Precision.INTERPOLATED,
            "StreetInt": Precision.INTERSECTION,
            "StreetName": Precision.STREET,
            "Postal": Precision.ZIP,
        }.get(kind, Precision.STREET)
    if provider == "census":
        return Precision.INTERPOLATED  # TIGER address ranges
    if provider == "nominatim":
        if raw.get("class") in ("building", "place") and raw.get("type") in ("house", "yes"):
            return Precision.POINT
        if raw.get("class") == "highway":
            return Precision.STREET
        if raw.get("type") == "postcode":
            return Precision.ZIP
        return Precision.POINT if raw.get("address", {}).get("house_number") else Precision.STREET
    return Precision.STREET


class FallbackGeocoder:
    """Offline first; online providers only when the offline confidence is low.

    Parameters
    ----------
    offline : OfflineGeocoder
        Answers every query first.
    providers : sequence of (str, OnlineProvider)
        Named providers tried in order when the offline confidence is below
        ``threshold``; empty (the default) means never online.
    threshold : float
        Offline confidence under which providers are asked.
    cache : GeocodeCache, optional
        Persistent cache; an in-memory one by default.
    online_confidence : float
        Confidence given to online answers (providers' scores are not comparable).
    """

    def __init__(
        self,
        offline: OfflineGeocoder,
        providers: Sequence[tuple[str, OnlineProvider]] = (),
        *,
        threshold: float = 0.5,
        cache: GeocodeCache | None = None,
        online_confidence: float = 0.7,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise GeocodeError(f"threshold must be in [0, 1]; got {threshold}")
        self.offline = offline
        self.providers = list(providers)
        self.threshold = threshold
        self.cache = cache if cache is not None else GeocodeCache()
        self.online_confidence = online_confidence
        self.calls = 0  # network calls made (cache misses)

    def lookup(self, query: object, zip_code: object = None) -> GeocodeResult:
        """Offline answer, replaced by an online one only when that is better."""
        res = self.offline.lookup(query, zip_code)
        if not self.providers or res.confidence >= self.threshold or not isinstance(query, str):
            return res
        text = query if zip_code is None or str(zip_code) in query else f"{query} {zip_code}"
        for name, provider in self.providers:
            raw = self._ask(name, provider, text)
            if raw is None:
                continue
            precision = _precision_of(name, raw.get("raw", {}))
            if _RANK[precision] > _RANK[res.precision] and res.precision is not Precision.NONE:
                continue  # the offline answer is at least as precise
            return GeocodeResult(
                query, raw["lon"], raw["lat"], precision, self.online_confidence,
                raw["address"], res.unit, res.zip, (), None, name, "online",
            )  # fmt: skip
        return res

    def _ask(self, name: str, provider: OnlineProvider, text: str) -> dict[str, Any] | None:
        found, answer = self.cache.get(name, text)
        if found:
            return answer
        self.calls += 1
        loc = provider.geocode(text, exactly_one=True)
        if loc is None:
            self.cache.put(name, text, None)
            return None
        # (lat, lon) -> (lon, lat): geopy Locations carry latitude first
        answer = {
            "lon": float(loc.longitude),
            "lat": float(loc.latitude),
            "address": str(loc.address),
            "raw": loc.raw if isinstance(loc.raw, dict) else {},
        }
        self.cache.put(name, text, answer)
        return answer

    def geocode(self, query: str, exactly_one: bool = True, **_: Any) -> Any:
        """geopy-style geocode over :meth:`lookup`."""
        loc = self.lookup(query).to_location()
        if loc is None or exactly_one:
            return loc
        return [loc]

    def reverse(self, query: Any, exactly_one: bool = True, **kwargs: Any) -> Any:
        """Reverse geocoding is always offline."""
        return self.offline.reverse(query, exactly_one=exactly_one, **kwargs)
