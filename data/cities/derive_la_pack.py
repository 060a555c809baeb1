"""Derive the Los Angeles pack's depot positions and crew roster from the 2020 MyLA311 file.

Run from the repository root::

    .venv/bin/python data/cities/derive_la_pack.py

It prints the figures that ``data/cities/los_angeles.toml`` records in its comments: the
anchor address points used to position each LA Sanitation yard, and the daily volume per
organisation that sizes the roster. It is a one-off derivation aid, not product code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

REQUESTS = Path("data/requests/los_angeles/myla311_2020-01-01_to_03.csv")
STOPS_PER_BULKY_CREW = 28  # 25-30 stops per 8-hour bulky-item shift
STOPS_PER_DUMPING_CREW = 20  # dumping piles take longer to load than a scheduled pickup
SITES_PER_GRAFFITI_CREW = 25  # ~15 min per site plus driving
YARDS = ("EV", "WV", "NC", "SLA", "WLA", "HB")


def _interp(
    n: float, n0: float, p0: tuple[float, float], n1: float, p1: tuple[float, float]
) -> tuple[float, float]:
    """Linearly inter/extrapolate a (lat, lon) pair at house number ``n``."""
    f = (n - n0) / (n1 - n0)
    return (p0[0] + f * (p1[0] - p0[0]), p0[1] + f * (p1[1] - p0[1]))


def positions() -> dict[str, tuple[float, float]]:
    """Return yard code -> (lat, lon) from the anchor points quoted in the pack."""
    out: dict[str, tuple[float, float]] = {}
    # WLA, 2027 S Stoner Ave: between 1901 S Stoner (nearest below) and 4645 S Stoner.
    out["WLA"] = _interp(2027, 1901, (34.037718, -118.452516), 4645, (33.994315, -118.413542))
    # SLA, 786 S Mission Rd: along Mission Rd from 238 S Mission Rd through
    # "4TH ST AT MISSION ROAD" (the 400 block), extrapolated to 786.
    out["SLA"] = _interp(786, 238, (34.044658, -118.227607), 400, (34.041834, -118.227093))
    # HB, 1400 N Gaffey St: latitude of the 1400 N block from the parallel N Meyler St
    # (920 N, 1415 N); longitude on the Gaffey line 422 S Gaffey -> Anaheim St at Gaffey.
    lat_hb = _interp(1400, 920, (33.751420, -118.296570), 1415, (33.757134, -118.296857))[0]
    f = (lat_hb - 33.740004) / (33.782070 - 33.740004)
    out["HB"] = (lat_hb, -118.292177 + f * (-118.297535 + 118.292177))
    # WV, 8840 Vanalden Ave: Valley grid, N numbers follow latitude; 8826 N Jumilla Ave and
    # 8901 N Reseda Blvd bracket 8840; longitude of Vanalden Ave from 7306 N Vanalden.
    lat_wv = _interp(8840, 8826, (34.230691, 0.0), 8901, (34.232130, 0.0))[0]
    out["WV"] = (lat_wv, -118.549049)
    # EV, 11050 Pendleton St: Valley grid, W numbers follow longitude; 11020 W Lorne St and
    # 11083 W Fenway St bracket 11050; latitude on the Pendleton line through
    # "PENDLETON ST AT HADDON AVE" and "PENDLETON ST AT NORRIS AVE".
    lon_ev = _interp(11050, 11020, (0.0, -118.370924), 11083, (0.0, -118.372984))[1]
    slope = (34.234631 - 34.225427) / (-118.378445 + 118.391041)
    out["EV"] = (34.234631 + slope * (lon_ev + 118.378445), lon_ev)
    # NC, 452 N San Fernando Rd: no 2020 point on this stretch of San Fernando Rd. The
    # Lincoln Heights avenues number N toward the river where San Fernando Rd runs; take
    # the N-number gradient from 255 S Avenue 19 to 150 N Avenue 18 and extend it to 452.
    out["NC"] = _interp(452, -255, (34.070693, -118.220568), 150, (34.074413, -118.224074))
    return out


def grid_check(df: pd.DataFrame) -> None:
    """Print leave-one-out errors of the grid step (number -> coordinate) near WV and EV.

    Each numbered address point is predicted from the two points on *other* streets with
    the nearest lower and higher numbers (at most 200 apart), as the WV and EV positions
    were; the error is in metres along the predicted coordinate.
    """
    parts = df["address"].str.extract(r"^(\d+)(?: 1/2)? ([NSEW]) (.+?), (\d{5})$")
    parts.columns = ["num", "dir", "street", "zip"]
    pts = pd.concat([df[["latitude", "longitude"]], parts], axis=1).dropna()
    pts["num"] = pts["num"].astype(int)
    pts = pts.drop_duplicates(["num", "dir", "street"])
    for label, prefix, (lon0, lat0), coord, m_per_deg in (
        ("WV, N numbers -> latitude", "N", (-118.549, 34.231), "latitude", 111_000),
        ("EV, W numbers -> longitude", "W", (-118.372, 34.239), "longitude", 92_000),
    ):
        near = pts[
            (pts["dir"] == prefix)
            & ((pts["latitude"] - lat0).abs() < 0.03)
            & ((pts["longitude"] - lon0).abs() < 0.036)
        ]
        errs = []
        for _, row in near.iterrows():
            other = near[near["street"] != row["street"]]
            lo = other[other["num"] <= row["num"]].nlargest(1, "num")
            hi = other[other["num"] > row["num"]].nsmallest(1, "num")
            if lo.empty or hi.empty or hi["num"].iloc[0] - lo["num"].iloc[0] > 200:
                continue
            f = (row["num"] - lo["num"].iloc[0]) / (hi["num"].iloc[0] - lo["num"].iloc[0])
            pred = lo[coord].iloc[0] + f * (hi[coord].iloc[0] - lo[coord].iloc[0])
            errs.append(abs(pred - row[coord]) * m_per_deg)
        e = pd.Series(errs)
        print(
            f"grid check {label}: n={len(e)} median {e.median():.0f} m, p90 {e.quantile(0.9):.0f} m"
        )


def volumes(df: pd.DataFrame) -> None:
    """Print daily volume per organisation and district for the routable types."""
    created = pd.to_datetime(df["createddate"], format="%m/%d/%y %H:%M")
    days = (created.max() - created.min()).total_seconds() / 86400
    print(f"span {days:.2f} days ({created.min()} to {created.max()})")
    for rtype, per_crew in (
        ("Bulky Items", STOPS_PER_BULKY_CREW),
        ("Illegal Dumping Pickup", STOPS_PER_DUMPING_CREW),
        ("Graffiti Removal", SITES_PER_GRAFFITI_CREW),
    ):
        sub = df[df["requesttype"] == rtype]
        print(f"\n{rtype}: {len(sub)} requests, {len(sub) / days:.0f}/day")
        for org, grp in sub.groupby("assignto"):
            if len(grp) < 10:
                continue  # one-off field assignments (F-*, LSD, WPD ...) are not crews
            per_day = len(grp) / days
            cds = grp["cd"].dropna().astype(int).value_counts()
            served = sorted(int(str(c)) for c, n in cds.items() if n >= max(5, 0.05 * len(grp)))
            crews = max(1, math.ceil(per_day / per_crew))
            print(f"  {org:9s} {len(grp):5d} {per_day:6.1f}/day crews={crews:2d} cds={served}")


def main() -> None:
    """Print depot positions and roster figures."""
    for code, (lat, lon) in positions().items():
        print(f"{code:4s} lon={lon:.6f} lat={lat:.6f}")  # (lat, lon) -> (lon, lat)
    df = pd.read_csv(REQUESTS)
    grid_check(df.dropna(subset=["latitude", "longitude"]))
    volumes(df)


if __name__ == "__main__":
    main()
