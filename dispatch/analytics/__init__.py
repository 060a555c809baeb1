"""Managers' analytics: hot spots, service KPIs and the monthly activity report.

Pure shaping on pandas frames of requests (the columns of
:func:`dispatch.services.queries.requests_frame`, plus ``updated_at`` and
``first_action_at`` where noted). Nothing here imports streamlit or sqlalchemy or
touches a file; :mod:`dispatch.services.analytics` and :mod:`dispatch.services.reports`
build the frames from the store and write the report.

Modules
    :mod:`dispatch.analytics.hotspots`
        H3 hexagon counts, Getis-Ord Gi* hot and cold spots with a Benjamini-Hochberg
        correction, repeat locations, proactive sweep stops, period comparison.
    :mod:`dispatch.analytics.kpis`
        Volumes, time to close and to first action, SLA compliance, backlog, outcomes,
        crew productivity; small samples flagged.
    :mod:`dispatch.analytics.report`
        Figures and print-styled HTML of the monthly activity report.
"""

from __future__ import annotations

#: Below this many requests a figure is flagged "small sample" and never ranked.
SMALL_SAMPLE = 20

__all__ = ["SMALL_SAMPLE"]
