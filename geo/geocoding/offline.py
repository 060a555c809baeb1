"""The offline geocoder: forward and reverse geocoding against an address reference.

Forward geocoding parses the text (:mod:`geo.address`), resolves the street name
(:mod:`geo.geocoding.streets`), places the house number on the best matching run
(:mod:`geo.geocoding.numbers`) or locates the intersection
(:mod:`geo.geocoding.intersections`), and ranks the runs of every resolution. The
answer's precision says what it stands for:

* ``point``: the address itself is in the reference (its source is named);
* ``interpolated``: placed from the known numbers around it (see
  :class:`~geo.geocoding.result.Method` for each way), or, for a numbered street
  missing near the ZIP (``1046 W 37TH ST``), between the same number on the numbered
  streets either side (``ordinal``);
* ``intersection``: a known intersection, or where the two streets' fitted lines cross;
* ``block``: the middle of a ``1200 block of`` / ``12XX`` block, or of
  ``X BETWEEN Y AND Z``;
* ``street``: the street is known but not where on it the number lies;
* ``zip``: only the ZIP is known (its centre, never presented as the house), also when
  the street is known only far outside the query ZIP (the far stretches become
  candidates);
* ``none``: nothing usable.

An explicit pre-direction is never answered with another one's house. Coordinates are
``lon, lat``; the geopy-style interface is in :mod:`geo.geocoding.geopy_adapter`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from geo.address import ParsedAddress, ParsedStreet, PlaceNames, _clean_zip, parse_address
from geo.geocoding.index import ReferenceIndex, Run
from geo.geocoding.intersections import IntersectionLocator
from geo.geocoding.numbers import Located, NumberPlacer, join_sources
from geo.geocoding.result import (
    HOUSE_LEVEL,
    Candidate,
    GeocodeResult,
    Method,
    Precision,
    not_located,
)
from geo.geocoding.streets import OPPOSITE, StreetResolver, ordinal_parts
from geo.geocoding.tuning import DEFAULT_TUNING, GeocoderTuning
from geo.reference import AddressReference, load_reference

__all__ = ["OfflineGeocoder"]

#: Methods whose answers may stand for a numbered street's neighbour in ``ordinal``.
_ORDINAL_FROM = frozenset(
    {Method.EXACT, Method.BETWEEN, Method.BEYOND, Method.GRID, Method.GRID_BLIND,
     Method.NEAR_END, Method.CENTERLINE}
)  # fmt: skip
#: Methods an ``ordinal`` answer is preferred to.
_ORDINAL_OVER = frozenset({Method.ACROSS, Method.ACROSS_BLIND, Method.GRID_LONG})


class OfflineGeocoder:
    """Offline geocoder over an :class:`~geo.reference.AddressReference`.

    Implements :class:`geo.geocoding.protocol.Geocoder`.

    Parameters
    ----------
    reference : AddressReference
        Address points, intersections, optional centerlines.
    tuning : GeocoderTuning, optional
        Limits and switches (:data:`~geo.geocoding.tuning.DEFAULT_TUNING`).
    default_zip : str, optional
        ZIP assumed when a query carries none (rarely useful; default none).
    cache_size : int
        How many distinct queries :meth:`lookup` remembers.

    Raises
    ------
    GeocodeError
        When ``reference`` is not an address reference or holds nothing.
    """

    def __init__(
        self,
        reference: AddressReference,
        *,
        tuning: GeocoderTuning = DEFAULT_TUNING,
        default_zip: str = "",
        cache_size: int = 200_000,
    ) -> None:
        self.index = ReferenceIndex(reference, tuning)
        self.reference = reference
        self.tuning = tuning
        self.default_zip = default_zip
        self.streets = StreetResolver(self.index)
        self.numbers = NumberPlacer(self.index, self.streets)
        self.intersections = IntersectionLocator(self.index, self.numbers)
        self.places = PlaceNames(reference.place_names)
        self._lookup_cached = lru_cache(maxsize=cache_size)(self._lookup_uncached)

    @classmethod
    def from_path(cls, path: Path | str, *, tuning: GeocoderTuning = DEFAULT_TUNING) -> (
        OfflineGeocoder
    ):
        """Load a saved reference (a Parquet file written by the reference build) and index it.

        Parameters
        ----------
        path : pathlib.Path or str
            The reference file.
        tuning : GeocoderTuning, optional
            As for the constructor.

        Returns
        -------
        OfflineGeocoder
            Ready to answer.
        """
        return cls(load_reference(path), tuning=tuning)

    @property
    def names(self) -> list[str]:
        """Return every street name the geocoder knows, sorted."""
        return self.index.names

    def clear_caches(self) -> None:
        """Forget remembered answers and street resolutions (fits of the reference stay)."""
        self._lookup_cached.cache_clear()
        self.streets.resolve_cached.cache_clear()

    # ------------------------------------------------------------- forward
    def lookup(self, query: object, zip_code: object = None) -> GeocodeResult:
        """Geocode one free-text query.

        Parameters
        ----------
        query : object
            Address text; anything else (None, NaN, numbers) gives precision ``none``.
        zip_code : object, optional
            ZIP from a separate field, used when the text has none.

        Returns
        -------
        GeocodeResult
            Never raises on bad text.
        """
        text = query if isinstance(query, str) else ""
        z = zip_code if zip_code is not None else self.default_zip
        return self._lookup_cached(text, _clean_zip(z))

    def _lookup_uncached(self, text: str, zip_code: str) -> GeocodeResult:
        p = parse_address(text, zip_code, self.places)
        street = self.streets.directional_name(p.street)
        if street is not p.street:
            p = replace(p, street=street)
        if p.kind == "intersection":
            res = self._intersection(p)
        elif p.kind == "between":
            res = self._between(p)
        elif p.kind in ("address", "block") and p.number is not None:
            res = self._address(p)
            if (
                res is None
                or res.precision not in HOUSE_LEVEL
                or res.method in _ORDINAL_OVER
                # no pre-direction and an answer outside the ZIP: maybe the other side
                or (not p.street.predir and res.zip != p.zip)
            ):
                res = self._ordinal(p) or res
        elif p.kind == "street":
            res = self._street_only(p)
        else:
            res = None
        if res is None:
            return self._zip_fallback(p)
        return res

    def _result(
        self,
        p: ParsedAddress,
        x: float,
        y: float,
        precision: Precision,
        confidence: float,
        matched: str,
        zip_code: str,
        candidates: tuple[Candidate, ...] = (),
        method: Method = Method.NONE,
        source: str = "",
    ) -> GeocodeResult:
        lon, lat = self.index.proj.inverse(x, y)
        conf = float(min(1.0, max(0.0, confidence)))
        return GeocodeResult(
            p.raw,
            lon,
            lat,
            precision,
            round(conf, 3),
            matched,
            p.unit,
            zip_code,
            candidates,
            source=source,
            method=method,
        )

    def _zip_fallback(self, p: ParsedAddress) -> GeocodeResult:
        zc = self.index.zip_centroid.get(p.zip)
        if zc is None:
            return not_located(p.raw, p.unit, p.zip)
        return self._result(
            p, zc[0], zc[1], Precision.ZIP, 0.1, f"ZIP {p.zip}", p.zip, (), Method.ZIP
        )

    def _far_street_zip(
        self, p: ParsedAddress, runs: list[tuple[Run, float]], zc: tuple[float, float, float]
    ) -> GeocodeResult:
        """ZIP-level answer for a street known only far from the query ZIP."""
        proj = self.index.proj
        zx, zy, _ = zc
        conf = 0.1
        cands = [Candidate(*proj.inverse(zx, zy), f"ZIP {p.zip}", Precision.ZIP, conf)]
        ranked = sorted(runs, key=lambda t: (-t[1], -len(t[0].numbers)))
        for run, _ in ranked[:9]:
            x, y, z, src = self.index.medoid(run)
            label = run.label + (f", {z}" if z else "")
            cands.append(Candidate(*proj.inverse(x, y), label, Precision.STREET, 0.05, src))
        return self._result(
            p, zx, zy, Precision.ZIP, conf, f"ZIP {p.zip}", p.zip, tuple(cands), Method.ZIP
        )

    def _address(self, p: ParsedAddress) -> GeocodeResult | None:
        """House-level answer for ``p`` (kinds ``address``, ``block``): rank every run."""
        if p.number is None:
            return None
        tuning = self.tuning
        index = self.index
        number = p.number + 50 if p.kind == "block" else p.number
        runs = self.streets.candidate_runs(p, p.street, run_zip=False)
        predir = p.street.predir
        # a run of the query's pre-direction counts only where the query ZIP is
        has_own_predir = any(
            r.predir == predir and (not p.zip or index.run_near_zip(r, p.zip, tuning.zip_reject_m))
            for r, _ in runs
        )
        if len(runs) > 1:  # runs that cannot win are not worth locating
            top = max(s for _, s in runs)
            runs = [(r, s) for r, s in runs if s >= top - 0.3]
        # (ranking score, confidence factor, run, location)
        scored: list[tuple[float, float, Run, Located]] = []
        for run, s in runs:
            other_dir = bool(predir and run.predir and run.predir != predir)
            loc: Located | None
            if other_dir:
                # Another pre-direction is another stretch of the street (1400 N and
                # 1400 S lie ~2 * 1400 numbers apart), even inside the query ZIP: never
                # this house. Without any run of the query's pre-direction, walk through
                # the divide line (low confidence); else street level at the run's end
                # nearest the divide.
                loc = None
                if (
                    p.zip
                    and not has_own_predir
                    and OPPOSITE.get(run.predir) == predir
                    and number <= tuning.max_across_query_number
                ):
                    loc = self.numbers.across_divide(run, number, predir)
                    if loc is not None and not index.zip_near_xy(
                        loc.x, loc.y, p.zip, tuning.long_walk_zip_test
                    ):
                        loc = None
                    elif loc is not None:
                        loc.zip = p.zip
                if loc is None:
                    loc = Located(
                        run.xl[0], run.yl[0], Precision.STREET, 0.2, None, run.zips[0],
                        Method.STREET, run.sources[0],
                    )  # fmt: skip
            else:
                loc = self.numbers.locate(run, number, p.zip)
                if p.kind == "block" and loc.precision not in HOUSE_LEVEL:
                    loc = self.numbers.in_block(run, number) or loc
            inside = int(run.numbers[0]) - 100 <= number <= int(run.numbers[-1]) + 100
            score = s + (0.1 if inside and not other_dir else 0.0) + 0.05 * loc.confidence
            if loc.precision is Precision.POINT:
                score += tuning.exact_bonus  # the address itself is known on this run
            factor = s
            if p.zip:
                agreement = self.streets.zip_agreement(loc.x, loc.y, loc.zip, p.zip)
                if agreement is None:
                    continue  # far outside the query ZIP: another street of that name
                if loc.method == Method.GRID_LONG and not index.zip_near_xy(
                    loc.x, loc.y, p.zip, tuning.long_walk_zip_test
                ):
                    continue
                score += agreement
                factor += min(0.0, agreement)
                if (
                    not predir
                    and inside
                    and agreement <= 0.0
                    and loc.precision is not Precision.POINT
                ):
                    score -= 0.1  # a known number range elsewhere is no evidence here
            if other_dir:
                score -= 0.2
            scored.append((score, factor, run, loc))
        cl = self.numbers.centerline_locate(p, number)
        if cl is not None and (
            not scored or max(scored, key=lambda t: t[0])[3].precision is not Precision.POINT
        ):
            run_cl, loc_cl, s_cl = cl
            scored.append((s_cl + 0.15, s_cl, run_cl, loc_cl))
        if not scored:
            return self._from_crossings(p, number) or self._street_only(p)
        scored.sort(key=lambda t: -t[0])
        best_score, best_factor, best_run, best = scored[0]
        candidates: tuple[Candidate, ...] = ()
        conf = best.confidence * max(0.0, min(1.0, best_factor))
        rivals = [
            t for t in scored[1:]
            if best_score - t[0] < 0.1
            and math.hypot(t[3].x - best.x, t[3].y - best.y) > 1000.0
        ]  # fmt: skip
        if rivals:
            candidates = tuple(
                self._candidate(number, run, loc) for _, _, run, loc in [scored[0], *rivals]
            )
            conf *= 0.5
        precision = best.precision
        if p.kind == "block" and precision in HOUSE_LEVEL:
            precision = Precision.BLOCK
        if best_factor < 0.5 and precision in HOUSE_LEVEL:
            precision = Precision.STREET  # wrong directional and ZIP: do not claim the house
            conf = min(conf, 0.3)
        shown = p.number if p.kind != "block" and precision in HOUSE_LEVEL else None
        matched = _format_run(shown, best_run, best.zip, p, best.method)
        return self._result(
            p, best.x, best.y, precision, conf, matched, best.zip, candidates, best.method,
            best.source,
        )  # fmt: skip

    def _from_crossings(self, p: ParsedAddress, number: int) -> GeocodeResult | None:
        """House from known crossings of the street (``crossing-walk``), see numbers."""
        got = self.numbers.walk_from_crossings(p, number)
        if got is None:
            return None
        x, y, conf, name = got
        block = p.kind == "block"
        precision = Precision.BLOCK if block else Precision.INTERPOLATED
        street = p.street
        label = " ".join(v for v in (street.predir, name, street.street_type, street.postdir) if v)
        matched = _format_label(None if block else p.number, label, p.zip, p)
        return self._result(
            p, x, y, precision, conf, matched, p.zip, (), Method.CROSSING_WALK
        )

    def _ordinal(self, p: ParsedAddress) -> GeocodeResult | None:
        """Locate a house on a numbered street from the numbered streets either side.

        Numbered streets (``W 37TH ST``, ``AVENUE 58``) run parallel in order, so
        ``1046 W 37TH ST`` lies between ``1046 W 36TH ST`` and ``1046 W 38TH ST``; used
        when the street itself is unknown near the query ZIP. Both neighbours (up to
        ``ordinal_reach`` names away) must be located at house level near the ZIP,
        a plausible block spacing apart, across (not along) the streets. Method
        ``ordinal``; ZIP required, since the same numbers repeat in other districts.
        Without a pre-direction the neighbours near the ZIP decide the side of the
        divide, at a lower confidence; it is also tried when an answer on another
        stretch of the name falls outside the query ZIP.
        """
        tuning = self.tuning
        parts = ordinal_parts(p.street.name)
        if parts is None or not p.zip or p.number is None:
            return None
        value, make = parts
        number = p.number + 50 if p.kind == "block" else p.number
        proj = self.index.proj

        def nearest(step: int) -> tuple[int, float, float, float, str] | None:
            """(names away, x, y, confidence, source) of the nearest neighbour on one side."""
            for k in range(1, tuning.ordinal_reach + 1):
                v = value + step * k
                if v < 1:
                    return None
                street = ParsedStreet(
                    p.street.predir, make(v), p.street.street_type, p.street.postdir,
                    p.street.type_word,
                )  # fmt: skip
                q = ParsedAddress(p.raw, "address", number, "", street, None, "", p.zip, p.city)
                r = self._address(q)
                if r is None or r.candidates or r.method not in _ORDINAL_FROM:
                    continue
                nx, ny = proj.forward(r.lon, r.lat)
                return step * k, float(nx), float(ny), r.confidence, r.source
            return None

        lower = nearest(-1)
        upper = nearest(1) if lower is not None else None
        if lower is None or upper is None:
            return None  # one side only: extrapolating adds little and errs more
        (ka, ax, ay, ca, sa), (kb, bx, by, cb, sb) = lower, upper
        gap = math.hypot(bx - ax, by - ay)
        spacing = gap / (kb - ka)
        if not tuning.ordinal_spacing_m[0] <= spacing <= tuning.ordinal_spacing_m[1]:
            return None
        g = self.numbers.number_gradient(p.street.predir, ax, ay) if p.street.predir else None
        if g is not None:
            # the step between the two neighbours must run across the numbering
            cos = abs(g[0] * (bx - ax) + g[1] * (by - ay)) / (math.hypot(*g) * gap)
            if cos > 0.5:
                return None
        t = -ka / (kb - ka)  # the query's name sits at 0 between ka < 0 < kb
        x, y = ax + t * (bx - ax), ay + t * (by - ay)
        if not self.index.zip_near_xy(x, y, p.zip, tuning.ordinal_zip_test):
            return None
        conf = min(tuning.ordinal_confidence, tuning.ordinal_confidence * min(ca, cb) / 0.9)
        conf *= 1.0 if abs(ka) == abs(kb) == 1 else 0.8
        if not p.street.predir:
            conf *= 0.8  # which side of the divide rests on the ZIP alone
        block = p.kind == "block"
        precision = Precision.BLOCK if block else Precision.INTERPOLATED
        matched = _format_label(None if block else p.number, p.street.full, p.zip, p)
        return self._result(
            p, x, y, precision, conf, matched, p.zip, (), Method.ORDINAL,
            join_sources(*sa.split("+"), *sb.split("+")),
        )  # fmt: skip

    def _candidate(self, number: int, run: Run, loc: Located) -> Candidate:
        lon, lat = self.index.proj.inverse(loc.x, loc.y)
        label = f"{number} {run.label}" + (f", {loc.zip}" if loc.zip else "")
        return Candidate(
            lon, lat, label, loc.precision, round(loc.confidence, 3), loc.source
        )

    def _street_only(self, p: ParsedAddress) -> GeocodeResult | None:
        """Street-level answer: the medoid of the best run of the street."""
        index = self.index
        runs = self.streets.candidate_runs(p, p.street)
        if not runs:
            return None
        zc = index.zip_centroid.get(p.zip) if p.zip else None
        if zc is not None and not any(
            index.run_near_zip(r, p.zip, self.tuning.zip_reject_m) for r, _ in runs
        ):
            # The street is known only far from the query ZIP (another stretch of that
            # name, or a street missing from the reference there): the ZIP is the honest
            # answer; the far stretches are offered as low-confidence candidates.
            return self._far_street_zip(p, runs, zc)
        runs.sort(key=lambda t: (-t[1], -len(t[0].numbers)))
        run, s = runs[0]
        x, y, zip_code, source = index.medoid(run)
        conf = 0.3 * max(0.0, min(1.0, s))
        # other stretches of that name far away, as likely as this one: say so
        rivals = []
        for other, s2 in runs[1:]:
            ox, oy, oz, osrc = index.medoid(other)
            if s - s2 < 0.1 and math.hypot(ox - x, oy - y) > 2000.0:
                rivals.append((other, ox, oy, oz, osrc))
        candidates: tuple[Candidate, ...] = ()
        if rivals:
            conf *= 0.5
            candidates = tuple(
                Candidate(
                    *index.proj.inverse(cx, cy),
                    r.label + (f", {cz}" if cz else ""),
                    Precision.STREET,
                    round(conf, 3),
                    csrc,
                )
                for r, cx, cy, cz, csrc in [(run, x, y, zip_code, source), *rivals[:9]]
            )
        return self._result(
            p, x, y, Precision.STREET, conf,
            run.label + (f", {zip_code}" if zip_code else ""), zip_code, candidates,
            Method.STREET, source,
        )  # fmt: skip

    def _street_of(self, p: ParsedAddress, street: ParsedStreet) -> GeocodeResult | None:
        """Street-level answer for one street of an intersection or stretch query."""
        return self._street_only(
            ParsedAddress(p.raw, "street", None, "", street, None, p.unit, p.zip, p.city)
        )

    # --------------------------------------------------------- intersections
    def _intersection(self, p: ParsedAddress) -> GeocodeResult | None:
        a_st, b_st = p.street, p.cross_street
        if b_st is None:
            return self._street_of(p, a_st)
        ra, rb = self.streets.resolve(a_st, p.zip), self.streets.resolve(b_st, p.zip)
        if not ra or not rb:
            # one street unknown: the other street alone is street-level at best
            known = a_st if ra else b_st if rb else None
            if known is None:
                return None
            return self._street_of(p, known)
        label = f"{a_st.full} AT {b_st.full}"
        # 1) known intersections
        best_known = self.intersections.known(ra, rb, p.zip)
        if best_known is not None and best_known[0] >= 0.7:
            s, x, y, z = best_known
            return self._result(
                p, x, y, Precision.INTERSECTION, 0.95 * s, label, z, (), Method.KNOWN
            )
        # 2) geometry of the two streets
        best: tuple[float, float, float, float] | None = None  # (score, x, y, conf)
        for a in ra:
            for b in rb:
                got = self.intersections.cross(
                    a.name, a_st.street_type, b.name, b_st.street_type, p.zip
                )
                if got is None:
                    continue
                x, y, conf = got
                conf *= a.factor * b.factor
                if best is None or conf > best[3]:
                    best = (conf, x, y, conf)
        if best is None:
            # no crossing: the street known near the query ZIP, at street level
            first = self._street_of(p, a_st)
            if first is not None and first.precision is Precision.STREET:
                return first
            second = self._street_of(p, b_st)
            return second if second is not None else first
        _, x, y, conf = best
        zip_code = p.zip or self.index.nearest_zip(x, y)
        return self._result(
            p, x, y, Precision.INTERSECTION, conf, label, zip_code, (), Method.CROSSING
        )

    def _between(self, p: ParsedAddress) -> GeocodeResult | None:
        """``X BETWEEN Y AND Z``: the middle of the stretch of X, at ``block`` precision."""
        if p.cross_street is None or p.second_cross is None:
            return self._street_of(p, p.street)
        ends = []
        for cross in (p.cross_street, p.second_cross):
            q = ParsedAddress(p.raw, "intersection", None, "", p.street, cross, p.unit, p.zip)
            r = self._intersection(q)
            if r is not None and r.precision is Precision.INTERSECTION:
                ends.append(r)
        label = f"{p.street.full} BETWEEN {p.cross_street.full} AND {p.second_cross.full}"
        if not ends:
            return self._street_of(p, p.street)
        proj = self.index.proj
        xy = [proj.forward(r.lon, r.lat) for r in ends]
        x = float(sum(float(a) for a, _ in xy) / len(xy))
        y = float(sum(float(b) for _, b in xy) / len(xy))
        conf = min(r.confidence for r in ends) * (0.8 if len(ends) == 2 else 0.4)
        return self._result(p, x, y, Precision.BLOCK, conf, label, ends[0].zip, (), Method.STRETCH)

    # ------------------------------------------------------------- reverse
    def reverse_lookup(self, lon: float, lat: float) -> GeocodeResult:
        """Nearest address point to ``(lon, lat)`` with a distance-based confidence.

        Parameters
        ----------
        lon, lat : float
            Clicked point (EPSG:4326).

        Returns
        -------
        GeocodeResult
            Precision ``point``, method ``nearest``; ``confidence = exp(-distance_m /
            100)``; precision ``none`` for a non-finite point or an empty reference.
        """
        index = self.index
        query = f"{lon:.6f}, {lat:.6f}"
        if index.tree is None or not (math.isfinite(lon) and math.isfinite(lat)):
            return not_located(query)
        x, y = index.proj.forward(lon, lat)
        d, k = index.tree.query([float(x), float(y)])
        k = int(k)
        zip_code = str(index.pzip[k])
        matched = f"{index.pnum[k]} {index.plabel[k]}" + (f", {zip_code}" if zip_code else "")
        plon, plat = index.proj.inverse(float(index.px[k]), float(index.py[k]))
        return GeocodeResult(
            query, plon, plat, Precision.POINT, round(math.exp(-float(d) / 100.0), 3),
            matched, "", zip_code, (), float(d), str(index.psource[k]), Method.NEAREST,
        )  # fmt: skip


def _format_run(number: int | None, run: Run, zip_code: str, p: ParsedAddress, method: str) -> str:
    label = run.label
    if method.startswith("across"):  # the query's side of the divide, not the run's
        parts = (p.street.predir, run.name, run.stype, run.postdir)
        label = " ".join(x for x in parts if x)
    return _format_label(number, label, zip_code, p)


def _format_label(number: int | None, label: str, zip_code: str, p: ParsedAddress) -> str:
    """``1046 1/2 W 37TH ST, 90007``; ``1000 BLOCK OF ...`` for a block; the street alone."""
    if number is None:
        block = p.kind == "block" and p.number is not None
        head = f"{p.number} BLOCK OF {label}" if block else label
    else:
        head = f"{number}{' ' + p.number_suffix if p.number_suffix else ''} {label}"
    return head + (f", {zip_code}" if zip_code else "")
