"""Service KPIs: volumes, time to close and to first action, SLA, backlog, crews.

Pure shaping of what the database counted (:mod:`dispatch.store.aggregates`): counts
grouped in SQL, and a narrow frame of durations (hours, computed in SQL) where a median
is asked for. Nothing here reads one row per request of the history.

Definitions (also shown on the KPI page)
    *Time to close*: ``closed_at - requested_at`` of requests a crew closed (status
    ``completed`` or ``closed_not_fixed``); cancelled and duplicate requests are not
    service and are left out. Negative durations (clock or data errors) are left out.
    *Time to first action*: ``first_action_at - requested_at``; the store sets
    ``first_action_at`` at the first event after creation that is not the import or
    intake record itself; without one, ``updated_at`` counts when later than the request.
    *SLA compliance*: share of crew-closed requests closed within the category's
    ``sla_h``. *Backlog*: requests still open (not completed, closed not fixed,
    cancelled or duplicate), aged from ``requested_at`` to ``now``.
    *Fixed* (``completed``) and *closed, not fixed* are always counted separately.
    Groups with fewer than :data:`~dispatch.analytics.SMALL_SAMPLE` requests are
    flagged ``small_sample``, get no rank and are sorted last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from dispatch.analytics import SMALL_SAMPLE
from dispatch.errors import ValidationError
from dispatch.model import RequestStatus

__all__ = [
    "AGE_BOUNDS_H",
    "AGE_BUCKETS",
    "CREW_CLOSED",
    "FREQUENCIES",
    "OUTCOMES",
    "backlog_ages",
    "crew_productivity",
    "duration_summary",
    "outcomes",
    "sla_compliance",
    "volume",
]

#: Statuses of requests a crew closed (the basis of time to close and SLA compliance).
CREW_CLOSED: tuple[str, ...] = (RequestStatus.COMPLETED.value,
                                RequestStatus.CLOSED_NOT_FIXED.value)
#: Outcome columns of :func:`outcomes` and the statuses each counts.
OUTCOMES: dict[str, tuple[str, ...]] = {
    "fixed": (RequestStatus.COMPLETED.value,),
    "closed_not_fixed": (RequestStatus.CLOSED_NOT_FIXED.value,),
    "cancelled": (RequestStatus.CANCELLED.value,),
    "duplicate": (RequestStatus.DUPLICATE.value,),
    "open": tuple(s.value for s in RequestStatus if s.is_open),
}
#: Backlog age buckets: (label, upper bound in days, exclusive).
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 day", 1),
    ("1-3 days", 3),
    ("3-7 days", 7),
    ("1-2 weeks", 14),
    ("2-4 weeks", 28),
    ("4+ weeks", float("inf")),
)
#: Period names of :func:`volume` and their pandas frequency.
FREQUENCIES: dict[str, str] = {"day": "D", "week": "W-SUN", "month": "M"}


def _key(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col].astype(object).where(frame[col].notna(), "(none)").astype(str)


def volume(counts: pd.DataFrame, by: str | None, period: str | None) -> pd.DataFrame:
    """Sum request counts by a column and/or by local day, week or month.

    Parameters
    ----------
    counts
        Requests counted in SQL: ``service_day`` (the local day), the ``by`` column and
        ``n``, as :func:`dispatch.store.aggregates.count_by` gives them.
    by
        ``category``, ``district``, ``channel`` ... or ``None``.
    period
        ``day``, ``week`` (weeks start on Monday), ``month`` or ``None``.

    Returns
    -------
    pandas.DataFrame
        Columns ``period`` (local start date, if asked), ``by`` (if asked) and
        ``requests``; most requests first without a period, else in time order.
    """
    keys: list[str] = []
    work = pd.DataFrame({"n": counts["n"].astype("int64")}, index=counts.index)
    if period is not None:
        if period not in FREQUENCIES:
            raise ValidationError(f"period {period!r}: expected one of {sorted(FREQUENCIES)}")
        days = pd.to_datetime(counts["service_day"])
        work["period"] = days.dt.to_period(FREQUENCIES[period]).dt.start_time.dt.date
        keys.append("period")
    if by is not None:
        work[by] = _key(counts, by)
        keys.append(by)
    if not keys:
        return pd.DataFrame({"requests": [int(work["n"].sum())]})
    out = work.groupby(keys)["n"].sum().rename("requests").reset_index()
    out["requests"] = out["requests"].astype("int64")
    if period is None:
        return out.sort_values(["requests", *keys], ascending=[False, *[True] * len(keys)],
                               kind="stable").reset_index(drop=True)
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def _flag_and_rank(out: pd.DataFrame, n_col: str, value: str, ascending: bool,
                   small_sample: int) -> pd.DataFrame:
    out["small_sample"] = out[n_col] < small_sample
    out = out.sort_values(["small_sample", value, n_col], ascending=[True, ascending, False],
                          kind="stable", na_position="last").reset_index(drop=True)
    ranked = (~out["small_sample"]) & out[value].notna()
    out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out.loc[ranked, "rank"] = np.arange(1, int(ranked.sum()) + 1)
    return out


def duration_summary(
    frame: pd.DataFrame,
    column: str,
    by: Sequence[str],
    *,
    small_sample: int = SMALL_SAMPLE,
) -> pd.DataFrame:
    """Median and 90th percentile of a duration, by groups; small samples flagged.

    Parameters
    ----------
    frame
        Durations per request (:func:`dispatch.store.aggregates.durations`).
    column
        ``close_h`` or ``first_action_h``.
    by
        Grouping columns (e.g. ``["category", "district"]``); empty for one overall row.
    small_sample
        Groups with fewer measured requests are flagged and not ranked.

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``n`` (requests with a measured duration), ``median_h``,
        ``p90_h``, ``small_sample``, ``rank`` (1 = fastest median among large samples;
        missing for small ones). Large samples first, fastest first.
    """
    measured = frame[frame[column].notna()]
    if not by:
        vals = measured[column]
        out = pd.DataFrame({"n": [len(vals)], "median_h": [vals.median()],
                            "p90_h": [vals.quantile(0.9)]})
        return _flag_and_rank(out, "n", "median_h", True, small_sample)
    work = measured.assign(**{b: _key(measured, b) for b in by})
    grouped = work.groupby(list(by))[column]
    out = pd.DataFrame({
        "n": grouped.size(),
        "median_h": grouped.median(),
        "p90_h": grouped.quantile(0.9),
    }).reset_index()
    out[["median_h", "p90_h"]] = out[["median_h", "p90_h"]].astype(float).round(2)
    return _flag_and_rank(out, "n", "median_h", True, small_sample)


def sla_compliance(
    closed: pd.DataFrame,
    past: pd.DataFrame,
    sla_h: Mapping[str, float],
    by: Sequence[str] = ("category",),
    *,
    small_sample: int = SMALL_SAMPLE,
) -> pd.DataFrame:
    """Share of crew-closed requests closed within their category's SLA.

    Parameters
    ----------
    closed
        Per group (the ``by`` columns): ``closed`` (crew-closed requests) and
        ``within`` (closed within the SLA), as
        :func:`dispatch.store.aggregates.sla_counts` gives them.
    past
        Per group: ``n`` open requests already older than their SLA
        (:func:`dispatch.store.aggregates.open_past_sla`).
    sla_h
        Category code -> target hours (the city pack's ``sla_h``); other categories are
        left out.
    by
        Grouping columns; must include ``category`` for the target to be shown.
    small_sample
        Groups with fewer closed requests are flagged and not ranked.

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``sla_h``, ``closed`` (crew-closed), ``within_sla``,
        ``compliance_pct``, ``open_past_sla``, ``small_sample``, ``rank`` (1 = best
        compliance among large samples). Large samples first, best first.
    """
    keys = list(by)
    left = closed.assign(**{k: _key(closed, k) for k in keys})
    left = left.rename(columns={"within": "within_sla"})[[*keys, "closed", "within_sla"]]
    right = past.assign(**{k: _key(past, k) for k in keys}).rename(
        columns={"n": "open_past_sla"})[[*keys, "open_past_sla"]]
    out = left.merge(right, on=keys, how="outer").fillna(0)
    for col in ("closed", "within_sla", "open_past_sla"):
        out[col] = out[col].astype("int64")
    if "category" in keys:
        out = out[out["category"].isin(list(sla_h))]
        out.insert(len(keys), "sla_h", out["category"].map(dict(sla_h)).astype(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["compliance_pct"] = np.where(
            out["closed"] > 0, np.round(100.0 * out["within_sla"] / out["closed"], 1), np.nan
        )
    out = out[out[["closed", "open_past_sla"]].sum(axis=1) > 0]
    out = _flag_and_rank(out.reset_index(drop=True), "closed", "compliance_pct", False,
                         small_sample)
    cols = [*keys, *(["sla_h"] if "category" in keys else []), "closed", "within_sla",
            "compliance_pct", "open_past_sla", "small_sample", "rank"]
    return out[cols]


#: Upper bounds of :data:`AGE_BUCKETS` in hours, for the SQL backlog count.
AGE_BOUNDS_H: tuple[float, ...] = tuple(b * 24.0 for _, b in AGE_BUCKETS)


def backlog_ages(counts: pd.DataFrame, by: str = "category") -> pd.DataFrame:
    """Open requests by age bucket.

    Parameters
    ----------
    counts
        Open requests counted in SQL by ``by`` and ``bucket`` (the index into
        :data:`AGE_BUCKETS`) with ``n`` (:func:`dispatch.store.aggregates.backlog`
        with :data:`AGE_BOUNDS_H`).
    by
        Column the backlog is split by.

    Returns
    -------
    pandas.DataFrame
        Long format: ``by``, ``age`` (a label of :data:`AGE_BUCKETS`), ``requests``,
        buckets in age order, only non-empty combinations.
    """
    labels = [label for label, _ in AGE_BUCKETS]
    if counts.empty:
        return pd.DataFrame(columns=[by, "age", "requests"])
    work = counts[counts["n"] > 0]
    out = pd.DataFrame({by: _key(work, by).to_numpy(),
                        "bucket": work["bucket"].astype(int).to_numpy(),
                        "requests": work["n"].astype("int64").to_numpy()})
    out = out.groupby([by, "bucket"])["requests"].sum().reset_index()
    out = out.sort_values([by, "bucket"], kind="stable")
    out.insert(1, "age", out["bucket"].map(lambda i: labels[int(i)]))
    return out[[by, "age", "requests"]].reset_index(drop=True)


def outcomes(counts: pd.DataFrame, by: str = "category") -> pd.DataFrame:
    """Count fixed, closed-not-fixed, cancelled, duplicate and open requests per group.

    Parameters
    ----------
    counts
        Requests counted in SQL by ``by`` and ``status`` with ``n``.

    Returns
    -------
    pandas.DataFrame
        ``by``, one column per key of :data:`OUTCOMES`, ``total``; largest total first.
    """
    status = counts["status"].astype(str)
    work = pd.DataFrame({by: _key(counts, by)})
    for name, statuses in OUTCOMES.items():
        work[name] = np.where(status.isin(statuses), counts["n"].astype("int64"), 0)
    out = work.groupby(by)[list(OUTCOMES)].sum().reset_index()
    out["total"] = out[list(OUTCOMES)].sum(axis=1)
    return out.sort_values(["total", by], ascending=[False, True],
                           kind="stable").reset_index(drop=True)


def crew_productivity(routes: pd.DataFrame, *, small_sample: int = 5) -> pd.DataFrame:
    """Count stops done per shift and drive versus service time per crew.

    Parameters
    ----------
    routes
        One row per route of an assigned plan: ``service_date``, ``crew``,
        ``stops`` (planned), ``done``, ``cant_complete``, ``drive_s``, ``service_s``
        (the plan's figures), as :func:`dispatch.services.analytics.routes_frame` gives.
    small_sample
        Crews with fewer shifts are flagged and not ranked.

    Returns
    -------
    pandas.DataFrame
        ``crew``, ``shifts``, ``stops``, ``done``, ``cant_complete``,
        ``done_per_shift``, ``drive_h``, ``service_h``, ``drive_share_pct`` (of drive
        plus service time), ``small_sample``, ``rank`` (1 = most stops done per shift).
    """
    cols = ["crew", "shifts", "stops", "done", "cant_complete", "done_per_shift", "drive_h",
            "service_h", "drive_share_pct", "small_sample", "rank"]
    if routes.empty:
        return pd.DataFrame(columns=cols)
    g = routes.groupby("crew")
    out = pd.DataFrame({
        "shifts": g["service_date"].nunique(),
        "stops": g["stops"].sum(),
        "done": g["done"].sum(),
        "cant_complete": g["cant_complete"].sum(),
        "drive_h": g["drive_s"].sum() / 3600.0,
        "service_h": g["service_s"].sum() / 3600.0,
    }).reset_index()
    out["done_per_shift"] = (out["done"] / out["shifts"]).round(1)
    total = out["drive_h"] + out["service_h"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["drive_share_pct"] = np.where(total > 0, np.round(100 * out["drive_h"] / total, 1),
                                          np.nan)
    out[["drive_h", "service_h"]] = out[["drive_h", "service_h"]].round(2)
    out = _flag_and_rank(out, "shifts", "done_per_shift", False, small_sample)
    return out[cols]
