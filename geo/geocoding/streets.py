"""Street resolution: which known streets a typed street may stand for, and how well.

A typed name is resolved exactly, through the reference's aliases (and a street type
that belonged to the name, ``LAUREL CANYON``), then through one- or two-edit typos
(rapidfuzz OSA distance among names with the same first letter), guarded by the ZIP.
The runs of the resolved names are then scored against the query's pre-direction,
type, post-direction and ZIP.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from geo.address import STREET_TYPES, TYPE_LONG_FORM, ParsedAddress, ParsedStreet, _ordinal
from geo.geocoding.index import ReferenceIndex, Run

__all__ = [
    "ORDINAL_NAME",
    "Resolved",
    "StreetResolver",
    "ordinal_parts",
]

#: The opposite of each simple pre-direction.
OPPOSITE = {"N": "S", "S": "N", "E": "W", "W": "E"}
#: A directional spelled out, as a street name (``WEST BOULEVARD``).
DIRECTION_WORDS = {"N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST"}
#: Numbered street names: ``37TH`` or ``AVENUE 58``.
ORDINAL_NAME = re.compile(r"^(?:(\d+)(?:ST|ND|RD|TH)|AVENUE (\d+))$")


def ordinal_parts(name: str) -> tuple[int, Callable[[int], str]] | None:
    """Split a numbered street name into its number and a maker of its neighbours' names.

    Parameters
    ----------
    name : str
        Canonical street name.

    Returns
    -------
    tuple or None
        ``37TH`` -> ``(37, v -> "{v}TH"-style name)``; ``AVENUE 58`` -> ``(58, ...)``;
        None for other names.
    """
    m = ORDINAL_NAME.match(name)
    if m is None:
        return None
    if m.group(1) is not None:
        return int(m.group(1)), _ordinal
    return int(m.group(2)), lambda v: f"AVENUE {v}"


@dataclass(frozen=True)
class Resolved:
    """A known street name a typed one stands for; ``factor`` 1 for exact, lower for typos."""

    name: str
    factor: float


class StreetResolver:
    """Resolve typed streets against a :class:`ReferenceIndex`.

    Parameters
    ----------
    index : ReferenceIndex
        The reference's index.
    """

    def __init__(self, index: ReferenceIndex) -> None:
        self.index = index
        self.tuning = index.tuning
        fuzzy_names = [n for n in index.names if not any(ch.isdigit() for ch in n)]
        self._names_by_len: dict[int, list[str]] = {}
        for nm in fuzzy_names:
            self._names_by_len.setdefault(len(nm), []).append(nm)
        self._pools: dict[tuple[str, int, int], list[str]] = {}
        self.resolve_cached = lru_cache(maxsize=100_000)(self._resolve_uncached)

    def resolve(self, street: ParsedStreet, zip_code: str) -> tuple[Resolved, ...]:
        """Return the known names ``street`` may stand for, best first (cached)."""
        return self.resolve_cached(street.name, street.type_word, zip_code)

    def _resolve_uncached(self, name: str, type_word: str, zip_code: str) -> tuple[Resolved, ...]:
        """Street names a typed name may stand for: exact, aliases, then typos."""
        known = self.index.known
        aliases = self.index.aliases
        out: list[Resolved] = []
        if name in known:
            out.append(Resolved(name, 1.0))
        if type_word:
            # the "type" belonged to the name: LAUREL CANYON typed LAUREL CANYN or CYN
            long_form = TYPE_LONG_FORM.get(STREET_TYPES.get(type_word, ""), type_word)
            for word in (type_word,) if long_form == type_word else (type_word, long_form):
                joined = f"{name} {word}"
                if joined in known and all(r.name != joined for r in out):
                    out.append(Resolved(joined, 0.95 if out else 1.0))
        for alt in (aliases.get(name), aliases.get(name.replace(" ", ""))):
            if alt and alt in known and all(r.name != alt for r in out):
                out.append(Resolved(alt, 0.98))
        if out or not name or any(ch.isdigit() for ch in name):
            return tuple(out)
        found = self._fuzzy(name, zip_code)
        if type_word:
            # ``LARREL CANYON``: the last word was read as a type but belongs to the name
            found += [r for r in self._fuzzy(f"{name} {type_word}", zip_code)
                      if all(f.name != r.name for f in found)]  # fmt: skip
        if not zip_code and len(found) > 1:
            return ()  # several equally close spellings and no ZIP to choose: no guess
        return tuple(found)

    def _fuzzy(self, name: str, zip_code: str) -> list[Resolved]:
        """Known names one or two typos from ``name`` (and near the ZIP when given)."""
        # one edit for names of 5-7 letters (4 when a ZIP confirms), two from 8 letters
        short_ok = len(name) == 4 and bool(zip_code)
        max_edits = 0 if len(name) < 5 and not short_ok else 1 if len(name) < 8 else 2
        if max_edits == 0:
            return []
        pool = self._fuzzy_pool(name[0], len(name), max_edits)
        hits = process.extract(name, pool, scorer=OSA.distance, score_cutoff=max_edits, limit=8)
        if not hits:
            return []
        best = min(h[1] for h in hits)
        found = []
        for cand, dist, _ in hits:
            if dist > best or abs(len(cand) - len(name)) > max_edits:
                continue
            reach = 0.0 if len(name) < 5 else self.tuning.fuzzy_zip_reach_m
            if zip_code and not self.index.name_near_zip(cand, zip_code, reach):
                continue
            found.append(Resolved(cand, 0.9 - 0.08 * (dist - 1)))
        return found

    def _fuzzy_pool(self, first: str, length: int, max_edits: int) -> list[str]:
        """Known names (no digits) starting with ``first``, length within ``max_edits``.

        Typos are searched among names with the same first letter: people rarely get the
        first letter wrong, and it makes the search about twenty times cheaper.
        """
        key = (first, length, max_edits)
        pool = self._pools.get(key)
        if pool is None:
            pool = [
                c
                for k in range(length - max_edits, length + max_edits + 1)
                for c in self._names_by_len.get(k, ())
                if c[0] == first
            ]
            self._pools[key] = pool
        return pool

    def directional_name(self, street: ParsedStreet) -> ParsedStreet:
        """``WEST BOULEVARD`` read as W + BOULEVARD: West Blvd when only that is known.

        The parser takes a leading directional as the pre-direction; when what is left is
        a street type that names no known street, and the directional spelled out does
        (``WEST``), the directional was the name.
        """
        if not street.predir or street.street_type or street.name not in STREET_TYPES:
            return street
        if street.name in self.index.known:
            return street  # W COURT: Court St with its type dropped
        word = DIRECTION_WORDS.get(street.predir, "")
        if word not in self.index.known:
            return street
        return ParsedStreet("", word, STREET_TYPES[street.name], street.postdir, street.name)

    def candidate_runs(
        self, p: ParsedAddress, street: ParsedStreet, *, run_zip: bool = True
    ) -> list[tuple[Run, float]]:
        """Return the runs of every name ``street`` resolves to, with a ranking score.

        Parameters
        ----------
        p : ParsedAddress
            The query (its ZIP).
        street : ParsedStreet
            The street to look up (``p.street`` or a cross street).
        run_zip : bool
            Score runs by the query ZIP (a bonus inside, a penalty far away).

        Returns
        -------
        list of (Run, float)
            The name's factor less penalties for another type, pre- or post-direction.
        """
        tuning = self.tuning
        out: list[tuple[Run, float]] = []
        for res in self.resolve(street, p.zip):
            for run in self.index.by_name.get(res.name, []):
                s = res.factor
                if street.street_type and run.stype != street.street_type:
                    # ``ECHO PARK`` read as name+type: the type was part of the name;
                    # numbered streets of another type are other streets (37TH ST, PL, DR)
                    s -= (
                        0.02 if res.name.endswith(street.type_word)
                        else tuning.numbered_type_penalty if ORDINAL_NAME.match(res.name)
                        else 0.15
                    )  # fmt: skip
                if street.predir and run.predir != street.predir:
                    s -= tuning.predir_penalty if run.predir else 0.05
                if street.postdir and run.postdir != street.postdir:
                    s -= 0.2
                if p.zip and run_zip:
                    if p.zip in run.zipset:
                        s += 0.1
                    elif not self.index.run_near_zip(run, p.zip):
                        s -= 0.3
                out.append((run, s))
        return out

    def zip_agreement(self, x: float, y: float, zip_at: str, zip_code: str) -> float | None:
        """Score bonus (+) or penalty (-) for how well a location fits the query ZIP.

        Parameters
        ----------
        x, y : float
            The location, metres.
        zip_at : str
            ZIP of the reference point(s) the location came from.
        zip_code : str
            The query ZIP.

        Returns
        -------
        float or None
            None when the location lies far outside the ZIP (another part of the city).
        """
        if zip_at == zip_code:
            return 0.1
        zc = self.index.zip_centroid.get(zip_code)
        if zc is None:
            return 0.0
        d = math.hypot(x - zc[0], y - zc[1])
        if d <= zc[2]:
            return 0.05
        if d <= zc[2] + 1000.0:
            return 0.0
        if d > zc[2] + self.tuning.zip_reject_m:
            return None
        return -0.3
