"""Every tunable number of the offline geocoder, in one frozen :class:`GeocoderTuning`.

The defaults are what ships. How they were chosen: the thresholds of the ``across``
walks, the ``ordinal`` and ``crossing-walk`` rules and the side-of-street and
block-layout models on held-out checks built from the 2020 request extract alone
(``holdout_2020`` in ``bench/bench_geocode.py``); the older limits (walk lengths,
extrapolation, ZIP rejection) were first set on the 2017 evaluation run and re-checked on
the 2020 ``points`` check, where varying them moves house level by at most 1.1 points
(``docs/benchmarks.md``). Benchmarks and tests switch models off by passing another
tuning (``dataclasses.replace(DEFAULT_TUNING, side_of_street=False)``), never by patching
module globals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from geo.errors import GeocodeError

__all__ = ["DEFAULT_TUNING", "GeocoderTuning", "ZipTest"]


@dataclass(frozen=True, slots=True)
class ZipTest:
    """An estimate counts as inside a ZIP when ``need`` of its ``k`` nearest points carry it.

    Attributes
    ----------
    k : int
        Reference points looked at (nearest first).
    need : int
        How many of them must carry the query ZIP.
    within_m : float
        Points farther than this do not count.
    """

    k: int
    need: int
    within_m: float

    def __post_init__(self) -> None:
        if not (self.k >= 1 and 1 <= self.need <= self.k):
            raise GeocodeError(
                f"ZipTest(k={self.k}, need={self.need}): expected k >= 1 and 1 <= need <= k"
            )
        if not (math.isfinite(self.within_m) and self.within_m > 0):
            raise GeocodeError(f"ZipTest within_m={self.within_m}: expected metres > 0")


@dataclass(frozen=True, slots=True)
class GeocoderTuning:
    """Limits, penalties and switches of :class:`geo.geocoding.offline.OfflineGeocoder`.

    Distances are metres (``_m``); ``numbers`` are house numbers; penalties and bonuses
    are added to a candidate's ranking score (1.0 for an exact street name).

    Attributes
    ----------
    run_gap_m : float
        Points of one street farther apart than this start a new run (stretch).
    m_per_number_max : float
        Most metres one house number may stand for (gradient fits above are refused).
    m_per_number_min : float
        Fewest metres one house number may stand for (run gradient fits below are
        refused; see ``one_numbering_runs``).
    one_numbering_runs : bool
        A run holds one numbering: two points of a street with more numbers between
        them than a block plus one per ``m_per_number_min`` metres are not joined
        into one run (False: every point within ``run_gap_m`` joins, as before).
    long_walks : bool
        Allow long walks along the house-number grid (method ``grid-long``, confidence
        0.3), kept only where they end among reference points of the query ZIP.
    align_walks : bool
        Line walked positions up with the same numbers on neighbouring streets.
    align_radius_m : float
        How far those neighbouring numbers may be.
    align_between : bool
        Also refine interpolations between two far-apart known numbers.
    align_min_gap_numbers : int
        Smallest gap between the two known numbers that is refined.
    side_of_street : bool
        Put estimates on their parity's side of the street (a model learnt per
        pre-direction from the reference).
    side_min_pairs : int
        Odd/even pairs needed before a pre-direction gets a side-of-street model.
    block_layout : bool
        Place a number within its block by how the reference's blocks are numbered
        (most houses use the low numbers of each hundred) instead of linearly.
    zip_weighted_models : bool
        Learn the block layout and the side-of-street distance with each ZIP's weight
        capped at the 90th percentile of ZIP sizes, so one densely mapped area does not
        set them for the whole city (False: every point counts the same, as before the
        County layer shipped).
    number_field_cell_m : float
        Number-field fits are shared by queries in one cell of this size, fitted at
        the cell's centre (answers never depend on the order of queries).
    beyond_max_numbers : int
        Numbers past the last known one placed along the run's own gradient.
    max_extrapolation_numbers : int
        Longest grid walk with the street's direction known (method ``grid``).
    max_blind_extrapolation_numbers : int
        Longest grid walk with the street's direction assumed (``grid-blind``).
    max_long_walk_numbers : int
        Longest ``grid-long`` walk with the street's direction known.
    max_long_walk_blind_numbers : int
        The same without the street's direction.
    long_walk_zip_test : ZipTest
        Where a long walk (or a walk from a crossing or across a divide) must end.
    crossing_walk_max_numbers : int
        Numbers walked from a known crossing of the street (direction known).
    max_across_numbers : int
        Numbers walked in all through a divide line (run's lowest number + query's).
    max_across_query_number : int
        Largest query number walked to through a divide line.
    predir_penalty : float
        A run of another pre-direction than the query's.
    numbered_type_penalty : float
        A numbered street of another type (``37TH PL`` for ``37TH ST``): leaves a factor
        below 0.5, so never that house.
    exact_bonus : float
        An exact address on a run outranks estimates on other runs.
    zip_reject_m : float
        An estimate farther than this beyond the query ZIP's radius is another street
        of that name.
    fuzzy_zip_reach_m : float
        A misspelt street must be known within this distance of the query ZIP.
    cross_zip_slack_m : float
        A crossing of two street lines, or a known crossing walked from, may lie this
        far outside the query ZIP's radius.
    cross_max_reach_m : float
        Farthest a crossing may lie from either street's points.
    foot_max_m : float
        Nearest points of two streets farther apart than this: no foot-point crossing.
    limited_access_types : frozenset of str
        Street types that are other roads when the query's type differs (freeways).
    ordinal_reach : int
        Numbered neighbours looked for up to this many names away on each side.
    ordinal_spacing_m : tuple of float
        Plausible (least, most) distance between consecutive numbered streets.
    ordinal_confidence : float
        Highest confidence of an ``ordinal`` answer.
    ordinal_zip_test : ZipTest
        Where an ``ordinal`` estimate must end.
    """

    run_gap_m: float = 1500.0
    m_per_number_max: float = 6.0
    m_per_number_min: float = 0.2
    one_numbering_runs: bool = True
    long_walks: bool = True
    align_walks: bool = True
    align_radius_m: float = 900.0
    align_between: bool = True
    align_min_gap_numbers: int = 300
    side_of_street: bool = True
    side_min_pairs: int = 30
    block_layout: bool = True
    zip_weighted_models: bool = True
    number_field_cell_m: float = 200.0
    beyond_max_numbers: int = 300
    max_extrapolation_numbers: int = 1500
    max_blind_extrapolation_numbers: int = 500
    max_long_walk_numbers: int = 8000
    max_long_walk_blind_numbers: int = 3000
    long_walk_zip_test: ZipTest = ZipTest(3, 2, 800.0)
    crossing_walk_max_numbers: int = 1500
    max_across_numbers: int = 3000
    max_across_query_number: int = 1200
    predir_penalty: float = 0.3
    numbered_type_penalty: float = 0.6
    exact_bonus: float = 0.1
    zip_reject_m: float = 3000.0
    fuzzy_zip_reach_m: float = 5000.0
    cross_zip_slack_m: float = 500.0
    cross_max_reach_m: float = 6000.0
    foot_max_m: float = 400.0
    limited_access_types: frozenset[str] = frozenset({"FWY", "HWY", "EXPY", "TPKE"})
    ordinal_reach: int = 3
    ordinal_spacing_m: tuple[float, float] = (40.0, 450.0)
    ordinal_confidence: float = 0.55
    ordinal_zip_test: ZipTest = ZipTest(3, 1, 800.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value) or value < 0:
                raise GeocodeError(
                    f"GeocoderTuning.{f.name} = {value!r}: expected a finite number >= 0"
                )
        if self.m_per_number_max <= 0 or self.run_gap_m <= 0 or self.number_field_cell_m <= 0:
            raise GeocodeError(
                "GeocoderTuning: m_per_number_max, run_gap_m and number_field_cell_m must be "
                f"> 0; got {self.m_per_number_max}, {self.run_gap_m}, {self.number_field_cell_m}"
            )
        if not 0 < self.m_per_number_min < self.m_per_number_max:
            raise GeocodeError(
                f"GeocoderTuning.m_per_number_min = {self.m_per_number_min!r}: expected metres "
                f"> 0 and below m_per_number_max ({self.m_per_number_max})"
            )
        low, high = self.ordinal_spacing_m
        if not 0 <= low < high:
            raise GeocodeError(
                f"GeocoderTuning.ordinal_spacing_m = {self.ordinal_spacing_m!r}: expected "
                "(least, most) metres with 0 <= least < most"
            )
        for name in ("predir_penalty", "numbered_type_penalty", "ordinal_confidence"):
            if getattr(self, name) > 1:
                raise GeocodeError(
                    f"GeocoderTuning.{name} = {getattr(self, name)!r}: expected 0 to 1"
                )


#: What ships.
DEFAULT_TUNING = GeocoderTuning()
