"""Batch geocoding of a table's address column, and the precision summary of the result."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from geo.errors import GeocodeError
from geo.geocoding.protocol import Geocoder
from geo.geocoding.result import GEOCODER_PRECISIONS

__all__ = ["OUTPUT_COLUMNS", "geocode_frame", "summarize_precision"]

#: Columns :func:`geocode_frame` adds (or replaces).
OUTPUT_COLUMNS = ("lon", "lat", "precision", "confidence", "matched_address", "geocode_source")


def geocode_frame(
    df: pd.DataFrame,
    address_column: str,
    geocoder: Geocoder,
    zip_column: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Geocode a column of addresses; each distinct (address, ZIP) is asked once.

    Parameters
    ----------
    df : pandas.DataFrame
        Input rows; not modified.
    address_column : str
        Column with the address text.
    geocoder : Geocoder
        What answers (the city pack's geocoder; there is no default city).
    zip_column : str, optional
        Column with a ZIP used when the text carries none.
    progress : bool
        Show a tqdm progress bar over the distinct queries.

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with :data:`OUTPUT_COLUMNS` (existing columns of those names
        are replaced; ``geocode_source`` names the reference source of the answer);
        ``attrs["geocode_summary"]`` maps each precision to its row count; see
        :func:`summarize_precision` for shares and mean confidence.

    Raises
    ------
    GeocodeError
        When a named column is not in the frame.
    """
    if address_column not in df.columns:
        raise GeocodeError(
            f"column {address_column!r} is not in the frame; columns are {list(df.columns)}"
        )
    if zip_column is not None and zip_column not in df.columns:
        raise GeocodeError(
            f"zip column {zip_column!r} is not in the frame; columns are {list(df.columns)}"
        )
    texts = df[address_column].tolist()
    zips = df[zip_column].tolist() if zip_column is not None else [None] * len(texts)
    keys = [
        (t if isinstance(t, str) else "", _zip_key(z)) for t, z in zip(texts, zips, strict=True)
    ]
    unique = list(dict.fromkeys(keys))
    iterator: Iterable[tuple[str, str]] = unique
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(unique, desc="geocoding", unit="address")
    answers = {k: geocoder.lookup(k[0], k[1] or None) for k in iterator}
    res = [answers[k] for k in keys]
    out = df.copy()
    out["lon"] = np.array([r.lon if r.lon is not None else np.nan for r in res], dtype=float)
    out["lat"] = np.array([r.lat if r.lat is not None else np.nan for r in res], dtype=float)
    out["precision"] = pd.Series([str(r.precision) for r in res], index=df.index, dtype="string")
    out["confidence"] = np.array([r.confidence for r in res], dtype=float)
    out["matched_address"] = pd.Series(
        [r.matched_address for r in res], index=df.index, dtype="string"
    )
    out["geocode_source"] = pd.Series([r.source for r in res], index=df.index, dtype="string")
    # a plain dict: DataFrames in attrs break pandas' concat/groupby attribute checks
    out.attrs["geocode_summary"] = summarize_precision(out)["count"].to_dict()
    return out


def _zip_key(z: object) -> str:
    if z is None or (isinstance(z, float) and not math.isfinite(z)):
        return ""
    if isinstance(z, float):
        return str(int(z))
    return str(z).strip()


def summarize_precision(frame: pd.DataFrame) -> pd.DataFrame:
    """Count and share of rows per precision, best precision first.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`geocode_frame` (needs ``precision`` and ``confidence``).

    Returns
    -------
    pandas.DataFrame
        Index ``precision`` (every geocoder precision, zeros included); columns
        ``count``, ``share``, ``mean_confidence``.
    """
    levels = [str(p) for p in GEOCODER_PRECISIONS]
    counts = frame["precision"].astype(str).value_counts().reindex(levels, fill_value=0)
    conf = frame.groupby(frame["precision"].astype(str))["confidence"].mean().reindex(levels)
    total = max(int(counts.sum()), 1)
    out = pd.DataFrame(
        {"count": counts.astype("int64"), "share": counts / total, "mean_confidence": conf}
    )
    out.index.name = "precision"
    return out
