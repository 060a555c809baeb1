"""The ``dispatch`` command: a thin shell over the services.

Every subcommand parses its arguments, opens a unit of work and calls one service;
the services do the work and own the transaction. Exit codes: 0 done, 2 the input
could not be read or the arguments are wrong, 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dispatch.errors import DispatchError, ImportFormatError
from geo.errors import GeoError


class CliError(Exception):
    """An error the CLI reports in one line, with an exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from dispatch.store import make_engine

    return make_engine(args.db)


def _ready_engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from dispatch.store import is_initialised

    engine = _engine(args)
    if not is_initialised(engine):
        raise CliError(
            f"database {engine.url.render_as_string(hide_password=True)} is not initialised; "
            "run 'dispatch init' first"
        )
    return engine


def _pack(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from dispatch.citypack import load_city_pack

    return load_city_pack(args.city)


def _progress_bar(desc: str) -> Callable[[int, int], None]:
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=desc, unit="row", file=sys.stderr,
                              disable=not sys.stderr.isatty())
        b = bar["bar"]
        b.update(done - b.n)
        if done >= total:
            b.close()

    return update


def cmd_init(args: argparse.Namespace) -> int:
    """Create or migrate the database, load the city pack, optionally the demo requests."""
    from dispatch.services.setup import fill_derived, load_roster
    from dispatch.store import UnitOfWork, migrate

    engine = _engine(args)
    migrate(engine)
    pack = _pack(args)
    with UnitOfWork(engine, actor="cli:init") as uow:
        print(load_roster(uow, pack).line())
    with UnitOfWork(engine, actor="cli:init") as uow:
        filled = fill_derived(uow, pack)
    if filled:
        print(f"stored service days and map cells of {filled} earlier requests")
    if args.demo:
        from dispatch.services.clock import start_demo_clock
        from dispatch.services.users import DEMO_PASSWORD, ensure_demo_accounts

        with UnitOfWork(engine, actor="cli:init") as uow:
            made = ensure_demo_accounts(uow, pack)
        if made:
            print(f"demo accounts (password {DEMO_PASSWORD!r}): {', '.join(made)}")
        if pack.demo_requests is None:
            print(f"city {pack.name} ships no demo requests")
        else:
            summary = _do_import(engine, pack, pack.demo_requests, "auto", None, None)
            print(f"demo requests: {summary.line()}")
        with UnitOfWork(engine, actor="cli:init") as uow:
            clock = start_demo_clock(uow, pack)
        if clock is not None:
            print(f"{clock.line(pack.timezone)}; `dispatch clock real` returns to real time")
    if not pack.has_districts:
        print(f"note: {pack.districts_note}")
    return 0


def _geocoder(pack, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return None
    from dispatch.services.geocoding import city_geocoder

    return city_geocoder(pack)


def _do_import(engine, pack, path: Path, fmt: str, mapping, rejects, geocode: bool = True):  # type: ignore[no-untyped-def]
    from dispatch.services.imports import import_requests
    from dispatch.store import UnitOfWork

    with UnitOfWork(engine, actor="cli:import") as uow:
        return import_requests(
            uow, path, pack, fmt=fmt, mapping=mapping, geocoder=_geocoder(pack, geocode),
            reject_file=rejects, progress=_progress_bar("import"),
        )


def _when(text: str | None, option: str, pack) -> datetime | None:  # type: ignore[no-untyped-def]
    if not text:
        return None
    from dispatch.errors import ValidationError
    from dispatch.services.open311 import parse_datetime

    try:
        return parse_datetime(text, option, pack)
    except ValidationError as err:
        raise CliError(str(err)) from None


def cmd_import_open311(args: argparse.Namespace) -> int:
    """Pull requests from an Open311 GeoReport v2 endpoint, in date windows."""
    from datetime import timedelta

    from dispatch.services.imports import import_open311
    from dispatch.store import UnitOfWork

    engine = _ready_engine(args)
    pack = _pack(args)
    if args.window_hours <= 0:
        raise CliError(f"--window-hours {args.window_hours} must be positive")
    rejects = Path(args.rejects) if args.rejects else Path("var") / "open311.rejects.csv"
    with UnitOfWork(engine, actor="cli:import") as uow:
        summary = import_open311(
            uow, pack, args.from_open311, since=_when(args.since, "--since", pack),
            until=_when(args.until, "--until", pack), service_code=args.service,
            geocoder=_geocoder(pack, not args.no_geocode),
            window=timedelta(hours=args.window_hours), reject_file=rejects)
    print(summary.line())
    if summary.rejects:
        for r in summary.rejects[:20]:
            print(f"  request {r.line}: {r.field}: {r.reason}", file=sys.stderr)
        if len(summary.rejects) > 20:
            print(f"  ... and {len(summary.rejects) - 20} more", file=sys.stderr)
        print(f"rejected requests written to {rejects}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import a request file (or pull an Open311 endpoint with --from-open311)."""
    from dispatch.importers.generic_csv import load_mapping

    if args.from_open311:
        if args.path:
            raise CliError("give a file or --from-open311 URL, not both")
        return cmd_import_open311(args)
    if not args.path:
        raise CliError("import needs a file, or --from-open311 URL")
    if args.service or args.since or args.until:
        raise CliError("--service, --since and --until go with --from-open311")
    engine = _ready_engine(args)
    pack = _pack(args)
    mapping = load_mapping(Path(args.mapping)) if args.mapping else None
    path = Path(args.path)
    rejects = Path(args.rejects) if args.rejects else Path("var") / f"{path.stem}.rejects.csv"
    summary = _do_import(engine, pack, path, args.format, mapping, rejects, not args.no_geocode)
    print(summary.line())
    if summary.rejects:
        for r in summary.rejects[:20]:
            print(f"  line {r.line}: {r.field}: {r.reason}", file=sys.stderr)
        if len(summary.rejects) > 20:
            print(f"  ... and {len(summary.rejects) - 20} more", file=sys.stderr)
        print(f"rejected rows written to {rejects}", file=sys.stderr)
    if summary.needs_location:
        print(f"{summary.needs_location} requests need a better location "
              f"({summary.unlocated} have none; see 'Needs location')",
              file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export stored requests."""
    from dispatch.services.exports import export_requests
    from dispatch.store import UnitOfWork

    engine = _ready_engine(args)
    pack = _pack(args)
    with UnitOfWork(engine, actor="cli:export") as uow:
        count = export_requests(uow, pack, args.format, Path(args.out))
    print(f"exported {count} requests to {args.out}")
    return 0


def _date_arg(text: str, flag: str = "--date") -> date:
    """Return the date a command-line flag gives, or fail in one sentence."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{flag} {text!r} is not a date; expected YYYY-MM-DD") from None


def cmd_routes_export(args: argparse.Namespace) -> int:
    """Write the routes of a day's assigned plan (or one crew's) as CSV, GPX or GeoJSON."""
    from dispatch.services.routesheets import export_day_routes
    from dispatch.store import UnitOfWork

    day = _date_arg(args.date)
    engine = _ready_engine(args)
    pack = _pack(args)
    with UnitOfWork(engine, actor="cli:routes") as uow:
        data = export_day_routes(uow, pack, day, args.format, args.crew)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        print(f"routes of {day.isoformat()} written to {out}")
    else:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    return 0


def cmd_districts_load(args: argparse.Namespace) -> int:
    """Load a city's council-district layer from a file or an ArcGIS FeatureServer URL."""
    from dispatch.services.districts import import_districts

    result = import_districts(args.source, city=args.city, id_field=args.id_field,
                              name_field=args.name_field)
    print(result.line() if hasattr(result, "line") else result)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Plan a day: one route per crew, each inside its crew's districts; save it as a draft."""
    import dataclasses

    from dispatch.services.planning import plan_for_day
    from dispatch.store import UnitOfWork

    day = _date_arg(args.date)
    engine = _ready_engine(args)
    pack = _pack(args)
    travel = pack.travel if args.travel == "pack" else pack.travel.with_model(args.travel)
    if args.no_slack:
        travel = dataclasses.replace(travel, reserve_share=0.0, reserve_min_minutes=0.0)
    pack = dataclasses.replace(pack, travel=travel)
    with UnitOfWork(engine, actor="cli:plan") as uow:
        summary = plan_for_day(
            uow, pack, day, districts=args.district, absent=args.absent or (), seed=args.seed,
            time_limit_s=args.time_limit, progress=_progress_bar("territory groups"),
        )
    for line in summary.lines():
        print(line)
    if args.out:
        import json

        from dispatch.services.planning import plan_document

        with UnitOfWork(engine, actor="cli:plan") as uow:
            doc = plan_document(uow, summary.plan_id)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"plan written to {out}")
    if args.assign:
        from dispatch.services.workflow import assign_plan, preview_assignment

        with UnitOfWork(engine, actor="cli:plan") as uow:
            outcome, lines = preview_assignment(uow, summary.plan_id)
        for line in lines:
            print(f"  {line}")
        with UnitOfWork(engine, actor="cli:plan") as uow:
            crews = assign_plan(uow, summary.plan_id, token=outcome.token)
        print(f"plan {summary.plan_id} assigned: {len(crews)} crews have a route")
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    """Assign a stored draft plan after showing what it changes."""
    from dispatch.services.workflow import assign_plan, preview_assignment
    from dispatch.store import UnitOfWork

    engine = _ready_engine(args)
    with UnitOfWork(engine, actor="cli:assign") as uow:
        outcome, lines = preview_assignment(uow, args.plan_id)
    for line in lines:
        print(f"  {line}")
    if outcome.disruptive and not args.yes:
        raise CliError(f"plan {args.plan_id} changes more than itself (above); run again "
                       "with --yes to assign it", code=1)
    with UnitOfWork(engine, actor="cli:assign") as uow:
        crews = assign_plan(uow, args.plan_id, token=outcome.token)
    print(f"plan {args.plan_id} assigned: {len(crews)} crews have a route")
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    """Show or set the store's business clock."""
    from datetime import datetime

    from dispatch.services.clock import clock_info, set_clock
    from dispatch.store import UnitOfWork

    engine = _ready_engine(args)
    pack = _pack(args)
    with UnitOfWork(engine, actor="cli:clock") as uow:
        if args.action == "show":
            info = clock_info(uow)
        elif args.action == "real":
            info = set_clock(uow, None)
        else:
            if not args.start:
                raise CliError("clock set needs a start, e.g. 2020-01-03T07:00")
            try:
                start = datetime.fromisoformat(args.start)
            except ValueError:
                raise CliError(f"clock start {args.start!r} is not a date and time; expected "
                               "YYYY-MM-DDTHH:MM") from None
            if start.tzinfo is None:
                start = start.replace(tzinfo=pack.timezone)
            info = set_clock(uow, start)
    print(info.line(pack.timezone))
    return 0


def cmd_geocode(args: argparse.Namespace) -> int:
    """Geocode a CSV file's address column offline."""
    from dispatch.services.geocoding import geocode_csv

    summary = geocode_csv(_pack(args), Path(args.path), args.address_column, Path(args.out),
                          zip_column=args.zip_column, progress=sys.stderr.isatty())
    for line in summary.lines():
        print(line)
    return 0


def cmd_build_reference(args: argparse.Namespace) -> int:
    """Rebuild the city's address reference from its pack's sources; report conflicts."""
    from dispatch.services.geocoding import build_reference

    for line in build_reference(_pack(args), Path(args.out) if args.out else None,
                                conflicts_path=Path(args.conflicts) if args.conflicts else None):
        print(line)
    return 0


def cmd_build_streets(args: argparse.Namespace) -> int:
    """Write the street lines offline maps draw (road network + address-traced streets)."""
    from dispatch.services.streets import build_streets

    pack = _pack(args)
    out = Path(args.out) if args.out else Path("static") / "streets" / f"{pack.name}.json"
    for line in build_streets(pack, out):
        print(line)
    return 0


def cmd_report_monthly(args: argparse.Namespace) -> int:
    """Write the monthly activity report (HTML) and its tables (CSV)."""
    from dispatch.services.reports import monthly_report
    from dispatch.store import UnitOfWork

    engine = _ready_engine(args)
    pack = _pack(args)
    with UnitOfWork(engine, actor="cli:report") as uow:
        summary = monthly_report(uow, pack, args.month, Path(args.out))
    for line in summary.lines():
        print(line)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the embedded database to a file, safely while it is in use."""
    from dispatch.store.backup import backup

    size = backup(_ready_engine(args), Path(args.out))
    print(f"backup written to {args.out} ({size / 1e6:.1f} MB)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Replace the embedded database by a backup."""
    from dispatch.store import make_engine
    from dispatch.store.backup import restore

    kept = restore(make_engine(args.db), Path(args.path))
    print(f"restored {args.path}; the previous database is kept as {kept}")
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    """Create a local account (the first admin, then anyone)."""
    import getpass
    import os

    from dispatch.auth import Role
    from dispatch.services.users import create_user
    from dispatch.store import UnitOfWork

    password = os.environ.get("CURBSIDE_PASSWORD") or (
        getpass.getpass(f"password for {args.username}: ") if sys.stdin.isatty() else "")
    if not password:
        raise CliError("no password: type it at the prompt or set CURBSIDE_PASSWORD")
    engine = _ready_engine(args)
    with UnitOfWork(engine, actor="cli:users") as uow:
        create_user(uow, args.username, password, Role(args.role), crew=args.crew,
                    pack=_pack(args) if args.crew else None)
    print(f"account {args.username} ({args.role}) created")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    """List the local accounts."""
    from dispatch.services.users import list_users
    from dispatch.store import UnitOfWork

    with UnitOfWork(_ready_engine(args), actor="cli:users") as uow:
        for row in list_users(uow):
            state = "active" if row.active else "disabled"
            print(f"{row.username:<24}{row.role:<12}{row.crew_name or '':<24}{state}")
    return 0


def cmd_anonymise(args: argparse.Namespace) -> int:
    """Erase residents' contact details of requests closed more than N days ago."""
    from dispatch.services.requests import anonymise_personal_data
    from dispatch.store import UnitOfWork

    with UnitOfWork(_ready_engine(args), actor="cli:retention") as uow:
        count = anonymise_personal_data(uow, args.older_than_days)
    print(f"anonymised {count} requests closed more than {args.older_than_days} days ago")
    return 0


def _version() -> str:
    from dispatch import __version__

    return __version__


def dashboard_command(args: argparse.Namespace) -> list[str]:
    """Return the command line that serves the dashboard (Streamlit) for ``args``."""
    from dispatch.citypack import shipped_dir

    checkout = Path(__file__).resolve().parents[1]
    root = checkout if (checkout / "streamlit_app.py").is_file() else shipped_dir(
        "curbside_dashboard")
    return [
        sys.executable, "-m", "streamlit", "run", str(root / "streamlit_app.py"),
        "--server.address", args.host, "--server.port", str(args.port),
        "--server.headless", "true", "--server.enableStaticServing", "true",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
        # a served product does not watch its sources (watching cost every new browser
        # session about half a second before its first run)
        "--server.fileWatcherType", "none", "--server.runOnSave", "false",
        # no full garbage collection after every run (~0.1 s here, waited for by an edit)
        "--runner.postScriptGC", "false",
        # Streamlit's own "Download as CSV" of tables cannot neutralise formulas
        "--client.disableDataExport", "true",
    ]


def cmd_serve_api(args: argparse.Namespace) -> int:
    """Serve the Open311 GeoReport v2 API (runs until stopped)."""
    import uvicorn

    from dispatch import logs
    from dispatch.api.app import ApiSettings, create_app

    engine = _ready_engine(args)
    pack = _pack(args)
    settings = ApiSettings(max_body_bytes=args.max_body_kb * 1024,
                           client_rate_per_min=args.client_rate, public_url=args.public_url)
    app = create_app(engine, pack, geocoder=_geocoder(pack, True), settings=settings)
    logs.log(logs.get("api"), 20, "serving", host=args.host, port=args.port, city=pack.name,
             url=f"http://{args.host}:{args.port}{settings.base_path}")
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False,
                server_header=False, timeout_graceful_shutdown=5)
    return 0


def cmd_api_keys_create(args: argparse.Namespace) -> int:
    """Make an API key for an Open311 client (its account is made too, if new)."""
    from dispatch.services.apikeys import create_api_key
    from dispatch.store import UnitOfWork

    with UnitOfWork(_ready_engine(args), actor="cli:api-keys") as uow:
        issued = create_api_key(uow, args.name, rate_per_min=args.rate)
    print(f"API key for {issued.username} ({issued.rate_per_min} submissions a minute); it is "
          "shown only now:")
    print(issued.key)
    return 0


def cmd_api_keys_list(args: argparse.Namespace) -> int:
    """List the API keys (never the keys themselves)."""
    from dispatch.services.apikeys import list_api_keys
    from dispatch.store import UnitOfWork

    with UnitOfWork(_ready_engine(args), actor="cli:api-keys") as uow:
        for k in list_api_keys(uow):
            state = (f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else
                     f"last used {k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "unused")
            print(f"{k.username:<24}{k.prefix}...  {k.rate_per_min:>5}/min  {state}")
    return 0


def cmd_api_keys_revoke(args: argparse.Namespace) -> int:
    """Revoke an API key by the prefix 'api-keys list' shows."""
    from dispatch.services.apikeys import revoke_api_key
    from dispatch.store import UnitOfWork

    with UnitOfWork(_ready_engine(args), actor="cli:api-keys") as uow:
        count = revoke_api_key(uow, args.prefix.rstrip("."))
    print(f"revoked {count} key{'s' if count != 1 else ''}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard on the configured database and city (runs until stopped)."""
    import os
    import subprocess

    env = dict(os.environ, CURBSIDE_CITY=args.city)
    if args.db:
        env["DATABASE_URL"] = args.db
    if args.demo:
        env["CURBSIDE_DEMO"] = "1"
    _ready_engine(args)
    try:
        return subprocess.call(dashboard_command(args), env=env)
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``dispatch`` command."""
    parser = argparse.ArgumentParser(
        prog="dispatch",
        description="Curbside: service requests to crew routes.",
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s (Curbside) {_version()}")
    parser.add_argument("--db", default=None,
                        help="database URL (default: $DATABASE_URL, else var/curbside.db)")
    parser.add_argument("--city", default=None,
                        help="city pack name or path (default: $CURBSIDE_CITY, else the pack "
                             "data/cities/default.txt names)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create or migrate the database and load the city pack")
    p.add_argument("--city", default=argparse.SUPPRESS)
    p.add_argument("--demo", action="store_true", help="also import the pack's demo requests")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("import", help="import a request file (MyLA311 CSV, Open311 JSON, CSV) "
                                      "or pull an Open311 endpoint")
    p.add_argument("path", nargs="?")
    p.add_argument("--from-open311", metavar="URL", default=None,
                   help="pull requests from this Open311 GeoReport v2 endpoint instead")
    p.add_argument("--service", default=None, help="with --from-open311: only this service code")
    p.add_argument("--since", default=None,
                   help="with --from-open311: from this date (default: the last pull's end, "
                        "else 90 days back)")
    p.add_argument("--until", default=None, help="with --from-open311: to this date (default: "
                                                 "now)")
    p.add_argument("--window-hours", type=float, default=24.0,
                   help="with --from-open311: length of the date windows asked (default 24)")
    p.add_argument("--format", default="auto", choices=["auto", "myla311", "open311", "csv"])
    p.add_argument("--mapping", help="column mapping file (TOML/JSON) for --format csv")
    p.add_argument("--rejects", help="where to write rejected rows (CSV)")
    p.add_argument("--no-geocode", action="store_true",
                   help="do not geocode rows without coordinates")
    p.add_argument("--city", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="export stored data")
    exp = p.add_subparsers(dest="what", required=True)
    q = exp.add_parser("requests", help="export requests")
    q.add_argument("--format", required=True, choices=["open311", "csv", "geojson"])
    q.add_argument("--out", required=True)
    q.add_argument("--city", default=argparse.SUPPRESS)
    q.set_defaults(func=cmd_export)

    p = sub.add_parser("routes", help="crews' routes")
    rsub = p.add_subparsers(dest="what", required=True)
    q = rsub.add_parser("export", help="write the routes of a day's assigned plan, each stop "
                                       "named by its address")
    q.add_argument("--date", required=True, help="service date, YYYY-MM-DD")
    q.add_argument("--crew", default=None, help="only this crew's route (default: every crew)")
    q.add_argument("--format", required=True, choices=["gpx", "csv", "geojson"])
    q.add_argument("--out", default=None, help="file to write (default: standard output)")
    q.add_argument("--city", default=argparse.SUPPRESS)
    q.set_defaults(func=cmd_routes_export)

    p = sub.add_parser("plan", help="plan a day's routes and save them as a draft")
    p.add_argument("--date", required=True, help="service date, YYYY-MM-DD")
    p.add_argument("--district", action="append", help="plan only this district (repeatable)")
    p.add_argument("--absent", action="append", help="crew absent today (repeatable)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="wall-clock cap per solver run, seconds (a safety net)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--travel", default="pack",
                   choices=["pack", "straight-line", "banded", "network"],
                   help="travel model (default: the city pack's [travel] model; straight-line: "
                        "great-circle x 1.3 at 25 km/h)")
    p.add_argument("--no-slack", action="store_true",
                   help="keep no reserve before the shift end (default: the pack's reserve)")
    p.add_argument("--out", help="write the plan as JSON")
    p.add_argument("--assign", action="store_true",
                   help="assign the new plan at once (prints what it changes first; started "
                        "routes carry over)")
    p.add_argument("--city", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("assign", help="assign a draft plan (shows what it changes first)")
    p.add_argument("plan_id", type=int)
    p.add_argument("--yes", action="store_true",
                   help="assign even when it supersedes another plan or releases requests")
    p.set_defaults(func=cmd_assign)

    p = sub.add_parser("clock", help="the store's business clock (demo replays)")
    p.add_argument("action", choices=["show", "set", "real"])
    p.add_argument("start", nargs="?", help="for set: YYYY-MM-DDTHH:MM (city time)")
    p.add_argument("--city", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_clock)

    p = sub.add_parser("geocode", help="geocode a CSV file offline")
    p.add_argument("path")
    p.add_argument("--address-column", required=True)
    p.add_argument("--zip-column", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--city", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_geocode)

    p = sub.add_parser("geo", help="address references")
    gsub = p.add_subparsers(dest="what", required=True)
    q = gsub.add_parser("build-reference", help="rebuild the city's address reference from "
                                                "the sources its pack names")
    q.add_argument("--out", default=None, help="where to write it (default: the pack's path)")
    q.add_argument("--conflicts", default=None,
                   help="also write every conflict between sources (and outlier) to this CSV")
    q.add_argument("--city", default=argparse.SUPPRESS)
    q.set_defaults(func=cmd_build_reference)
    q = gsub.add_parser("build-streets", help="write the street lines maps draw when no "
                                              "tiles load (static/streets/<city>.json)")
    q.add_argument("--out", default=None,
                   help="where to write it (default: static/streets/<city>.json)")
    q.add_argument("--city", default=argparse.SUPPRESS)
    q.set_defaults(func=cmd_build_streets)

    p = sub.add_parser("report", help="reports")
    rsub = p.add_subparsers(dest="what", required=True)
    q = rsub.add_parser("monthly", help="monthly activity report (HTML + CSV tables)")
    q.add_argument("--month", required=True, help="YYYY-MM")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--city", default=argparse.SUPPRESS)
    q.set_defaults(func=cmd_report_monthly)

    p = sub.add_parser("backup", help="copy the embedded SQLite database to a file")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="replace the embedded SQLite database by a backup")
    p.add_argument("path")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("users", help="local accounts")
    usub = p.add_subparsers(dest="what", required=True)
    q = usub.add_parser("create", help="create an account (password from a prompt or "
                                       "$CURBSIDE_PASSWORD)")
    q.add_argument("username")
    q.add_argument("--role", required=True, choices=["admin", "supervisor", "crew", "manager"])
    q.add_argument("--crew", default=None, help="for crew members: their crew's name")
    q.add_argument("--city", default=argparse.SUPPRESS)
    q.set_defaults(func=cmd_users_create)
    q = usub.add_parser("list", help="list accounts")
    q.set_defaults(func=cmd_users_list)

    p = sub.add_parser("anonymise", help="erase callers' contact details after N days")
    p.add_argument("--older-than-days", type=int, default=90)
    p.set_defaults(func=cmd_anonymise)

    p = sub.add_parser("serve-api", help="serve the Open311 GeoReport v2 API until stopped")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--public-url", default=None,
                   help="the endpoint's address as clients reach it (for discovery)")
    p.add_argument("--max-body-kb", type=int, default=64, help="largest request body, KiB")
    p.add_argument("--client-rate", type=int, default=1200,
                   help="calls one client address may make per minute")
    p.add_argument("--city", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve_api)

    p = sub.add_parser("api-keys", help="API keys of Open311 clients")
    ksub = p.add_subparsers(dest="what", required=True)
    q = ksub.add_parser("create", help="make a key (shown once) for an API account")
    q.add_argument("name", help="the client's account name, e.g. fixmystreet")
    q.add_argument("--rate", type=int, default=60, help="submissions per minute")
    q.set_defaults(func=cmd_api_keys_create)
    q = ksub.add_parser("list", help="list keys (prefixes only)")
    q.set_defaults(func=cmd_api_keys_list)
    q = ksub.add_parser("revoke", help="revoke a key by its prefix")
    q.add_argument("prefix")
    q.set_defaults(func=cmd_api_keys_revoke)

    p = sub.add_parser("dashboard", help="serve the dashboard (Streamlit) until stopped")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--demo", action="store_true", help="show the demo sign-in hints")
    p.add_argument("--city", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("districts", help="council-district layers")
    dsub = p.add_subparsers(dest="what", required=True)
    q = dsub.add_parser("load", help="load a district layer from a file or ArcGIS layer URL")
    q.add_argument("source", help="GeoJSON/Shapefile/GeoPackage path or FeatureServer layer URL")
    q.add_argument("--id-field", required=True)
    q.add_argument("--name-field", default=None)
    q.add_argument("--city", default=argparse.SUPPRESS)
    q.set_defaults(func=cmd_districts_load)

    return parser


#: Commands that run until stopped: they log at INFO unless $CURBSIDE_LOG_LEVEL says else.
_SERVERS: set[Callable[[argparse.Namespace], int]] = {cmd_dashboard, cmd_serve_api}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dispatch`` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from dispatch import logs
        from dispatch.citypack import default_city_pack

        if getattr(args, "city", None) is None:
            args.city = default_city_pack()

        logs.configure(default="INFO" if args.func in _SERVERS else "WARNING")
        return int(args.func(args))
    except CliError as err:
        print(f"dispatch: {err}", file=sys.stderr)
        return err.code
    except ImportFormatError as err:
        print(f"dispatch: {err}", file=sys.stderr)
        return 2
    except (DispatchError, GeoError) as err:
        print(f"dispatch: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dispatch: interrupted; nothing was committed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
