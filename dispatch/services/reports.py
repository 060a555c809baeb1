"""The monthly activity report: read the month from the store, write HTML and CSV tables.

``dispatch report monthly --month YYYY-MM --out DIR`` calls :func:`monthly_report`, which
writes into ``DIR``:

``report.html``
    Print-styled page: opened and resolved, by category, top request types, share by
    channel, an inline SVG map of the month's hot spots (no network).
``by_category.csv``
    ``category,opened,resolved`` (category labels of the city pack).
``by_channel.csv``
    ``channel,opened,share`` (share of the month's opened requests, 0..1).
``top_types.csv``
    ``service_code,opened`` (the city's own request types, most frequent first).

Counting rules are those of :mod:`dispatch.analytics.report`: opened = requested in the
month (local time); resolved = ``closed_at`` in the month with any closed status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dispatch.analytics.hotspots import GiStarParams, area_cells, gi_star
from dispatch.analytics.report import (
    MonthlyFigures,
    hex_svg,
    month_bounds,
    monthly_figures,
    render_html,
)
from dispatch.auth import READING, service
from dispatch.citypack import CityPack
from dispatch.errors import ValidationError
from dispatch.store import RequestFilter, UnitOfWork, utcnow
from dispatch.text import csv_bytes

__all__ = ["REPORT_FILES", "ReportSummary", "monthly_report"]

#: Files written by :func:`monthly_report`, in order.
REPORT_FILES: tuple[str, ...] = ("report.html", "by_category.csv", "by_channel.csv",
                                 "top_types.csv")
#: H3 resolution of the report's map (about 5 km² per cell: readable on paper).
REPORT_RESOLUTION = 7


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`monthly_report` wrote.

    Parameters
    ----------
    month
        ``YYYY-MM``.
    out_dir
        The folder written to.
    figures
        The month's figures.
    files
        Paths written.
    """

    month: str
    out_dir: Path
    figures: MonthlyFigures
    files: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def opened(self) -> int:
        """Return the number of requests opened in the month."""
        return self.figures.opened

    @property
    def resolved(self) -> int:
        """Return the number of requests resolved in the month."""
        return self.figures.resolved

    def lines(self) -> list[str]:
        """Return the lines the CLI prints."""
        out = [
            f"monthly report {self.month}: opened {self.opened:,}, resolved "
            f"{self.resolved:,} (fixed {self.figures.fixed:,})",
        ]
        top = self.figures.by_category.head(3)
        if not top.empty:
            out.append("  top categories: " + ", ".join(
                f"{r.category} {r.opened:,}" for r in top.itertuples(index=False)))
        out.extend(f"  wrote {p}" for p in self.files)
        return out


@service(*READING, action="write reports")
def monthly_report(uow: UnitOfWork, pack: CityPack, month: str, out_dir: Path) -> ReportSummary:
    """Write the monthly activity report of ``month`` into ``out_dir``.

    Parameters
    ----------
    uow
        Unit of work (read only).
    pack
        The city pack: time zone, category labels.
    month
        ``YYYY-MM``.
    out_dir
        Folder to write into (created if missing; files are overwritten).

    Returns
    -------
    ReportSummary
        The figures and the files written.

    Raises
    ------
    ValidationError
        If ``month`` is not ``YYYY-MM``.
    """
    from dispatch.services.analytics import hex_counts

    try:
        start, end = month_bounds(month, pack.timezone)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    # counted in SQL: opened in the month, and resolved in it (possibly opened earlier)
    in_month = RequestFilter(requested_from=start, requested_until=end)
    opened = uow.stats.count_by(in_month, ("category", "channel", "service_code"))
    resolved = uow.stats.count_by(RequestFilter(closed_from=start, closed_until=end,
                                                requested_until=end), ("category", "status"))
    labels = {c.code: c.label for c in pack.categories.values()}
    figures = monthly_figures(opened, resolved, month, labels)

    counts = hex_counts(uow, in_month, REPORT_RESOLUTION)
    if not counts.empty:
        spots = gi_star(counts, GiStarParams(),
                        area=area_cells(pack.boundary, REPORT_RESOLUTION))
        counts = counts.merge(spots[["cell", "spot", "q"]], on="cell", how="left")
        counts["spot"] = counts["spot"].where(counts["q"] <= 0.05, "")
    svg = hex_svg(counts)

    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    html_path.write_text(
        render_html(figures, pack.display_name, map_svg=svg, generated_at=utcnow(),
                    notes=[f"City pack: {pack.name}; times in {pack.timezone.key}."]),
        encoding="utf-8",
    )
    paths = [html_path]
    tables = {
        "by_category.csv": figures.by_category[["category", "opened", "resolved"]],
        "by_channel.csv": figures.by_channel[["channel", "opened", "share"]],
        "top_types.csv": figures.top_types[["service_code", "opened"]],
    }
    for name, table in tables.items():
        path = out_dir / name
        path.write_bytes(csv_bytes(table, lineterminator="\n"))
        paths.append(path)
    return ReportSummary(month=month, out_dir=out_dir, figures=figures, files=tuple(paths))

