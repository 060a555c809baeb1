#!/usr/bin/env bash
# Install Curbside as a city's IT department would, and start it.
#
#   1. build the wheel from the checkout's files (tracked and new, not ignored ones);
#   2. install it into a fresh venv outside the checkout, with every dependency at the
#      lowest version pyproject.toml allows (its lower bounds, pinned);
#   3. run the app and API tests there, on those lowest versions;
#   4. from an empty folder: `dispatch --version`, `python -m dispatch --version`,
#      `dispatch init --demo`, `alembic current` with the packaged alembic.ini, an API key;
#      start `dispatch serve-api` and `dispatch dashboard`, and health-check both (the
#      API's /health, services and requests, a POST; Streamlit's health, a page and the
#      vendored Leaflet served from the installed package).
#
# Called by `make wheel-check` (part of `make test`). Needs the package registry (or
# pip's cache) for the venv; nothing else from outside.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=$(pwd)
PYTHON=${PYTHON:-python3}
BUILD_PY=${BUILD_PY:-$CHECKOUT/.venv/bin/python}
WORK=$(mktemp -d /tmp/curbside-wheel.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "wheel check: $*"; }
fail() { echo "wheel check: FAILED: $*" >&2; for f in "$WORK"/site/*.log; do [ -f "$f" ] && tail -n 20 "$f" >&2; done; exit 1; }

# 1. the wheel, from a copy of the checkout's files
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/site"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
"$BUILD_PY" -m build --wheel --outdir "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 \
  || { tail -n 30 "$WORK/build.log"; fail "the wheel did not build"; }
WHEEL=$(ls "$WORK"/dist/curbside-*.whl)
say "built $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"

# 2. a fresh venv with the lowest allowed versions
"$BUILD_PY" - "$CHECKOUT/pyproject.toml" >"$WORK/lowest.txt" <<'EOF'
import re, sys, tomllib
doc = tomllib.load(open(sys.argv[1], "rb"))
specs = list(doc["project"]["dependencies"]) + list(doc["project"]["optional-dependencies"]["postgres"])
for spec in specs:
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?>=([0-9][0-9A-Za-z.]*)", spec)
    if not m:
        sys.exit(f"dependency {spec!r} has no plain lower bound")
    print(f"{m.group(1)}=={m.group(3)}")
EOF
TEST_TOOLS=$("$BUILD_PY" -m pip list --format=freeze 2>/dev/null \
  | grep -i -E '^(pytest|pytest-timeout|hypothesis|jsonschema|geojson)==' | tr '\n' ' ')
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install --quiet --disable-pip-version-check -c "$WORK/lowest.txt" \
  "$WHEEL[postgres]" $TEST_TOOLS >"$WORK/pip.log" 2>&1 || { tail -n 30 "$WORK/pip.log"; fail "pip install"; }
"$VPY" -m pip check >/dev/null || fail "pip check in the fresh venv"
for pin in $(cat "$WORK/lowest.txt"); do
  name=${pin%%==*}; want=${pin##*==}
  got=$("$VPY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
  [ "$got" = "$want" ] || fail "$name is $got in the fresh venv, not its lower bound $want"
done
say "installed with the lowest allowed versions: $(tr '\n' ' ' <"$WORK/lowest.txt")"

# 3. the app and API tests on those versions (the checkout's tests, this venv's packages)
(cd "$WORK/src" && env -u DATABASE_URL -u CURBSIDE_REQUIRE_POSTGRES CURBSIDE_DATA_DIR= \
  "$VPY" -m pytest -q -p no:cacheprovider tests/test_app.py tests/test_app_sessions.py \
  tests/test_app_managers.py tests/test_api_server.py tests/test_packaging.py) \
  || fail "app and API tests on the lowest versions"

# 4. a city's first start, from an empty folder
cd "$WORK/site"
unset DATABASE_URL CURBSIDE_REQUIRE_POSTGRES CURBSIDE_DATA_DIR
BIN="$WORK/venv/bin"
where=$("$VPY" -c "import dispatch, curbside_data, curbside_dashboard; print(dispatch.__file__)")
case "$where" in "$WORK/venv/"*) ;; *) fail "dispatch imported from $where, not the venv";; esac
version=$("$BIN/dispatch" --version)
[ "$version" = "$("$VPY" -m dispatch --version)" ] || fail "python -m dispatch --version differs"
say "$version"
"$BIN/dispatch" init --demo >init.log 2>&1 || fail "dispatch init --demo"
grep -q "demo requests: imported 10000" init.log || fail "the demo requests were not imported"
ALEMBIC_INI=$("$VPY" -c "import dispatch.store, pathlib; print(pathlib.Path(dispatch.store.__file__).with_name('alembic.ini'))")
"$BIN/alembic" -c "$ALEMBIC_INI" current 2>/dev/null | grep -q "(head)" || fail "alembic current is not at head"
KEY=$("$BIN/dispatch" api-keys create ci-check | tail -n 1)

free_port() { "$VPY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
API_PORT=$(free_port); UI_PORT=$(free_port)
setsid "$BIN/dispatch" serve-api --port "$API_PORT" >api.log 2>&1 & PIDS+=($!)
setsid "$BIN/dispatch" dashboard --port "$UI_PORT" --demo >dashboard.log 2>&1 & PIDS+=($!)

"$VPY" - "$API_PORT" "$UI_PORT" "$KEY" <<'EOF' || fail "health checks"
import json, sys, time, urllib.request, urllib.parse
api, ui, key = f"http://127.0.0.1:{sys.argv[1]}", f"http://127.0.0.1:{sys.argv[2]}", sys.argv[3]

def get(url, data=None):
    req = urllib.request.Request(url, data=data)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, resp.headers.get("content-type", ""), resp.read()

def wait(url, what):
    deadline = time.monotonic() + 120
    while True:
        try:
            return get(url)
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"{what} did not answer {url} within 120 s")
            time.sleep(0.5)

status, _, body = wait(f"{api}/health", "the API")
assert status == 200 and json.loads(body)["status"] == "ok", body
services = json.loads(get(f"{api}/open311/v2/services.json")[2])
assert any(s["service_code"] == "bulky_items" for s in services), services
found = json.loads(get(f"{api}/open311/v2/requests.json?page_size=5")[2])
assert len(found) == 5, found
status, kind, xml = get(f"{api}/open311/v2/requests?page_size=1")
assert kind.startswith("text/xml") and xml.startswith(b"<?xml"), kind
form = urllib.parse.urlencode({"api_key": key, "service_code": "bulky_items",
                               "lat": "34.0537", "long": "-118.2428"}).encode()
made = json.loads(get(f"{api}/open311/v2/requests.json", form)[2])[0]
back = json.loads(get(f"{api}/open311/v2/requests/{made['service_request_id']}.json")[2])
assert back[0]["status"] == "open", back
print(f"wheel check: API healthy: {len(services)} services, POST made {made['service_request_id']}")
open("posted.txt", "w").write(made["service_request_id"])
status, _, body = wait(f"{ui}/_stcore/health", "the dashboard")
assert status == 200 and body.strip() == b"ok", body
status, kind, page = get(f"{ui}/")
assert status == 200 and b"<html" in page.lower(), page[:200]
status, kind, js = get(f"{ui}/app/static/vendor/leaflet/leaflet.js")
assert status == 200 and b"Leaflet" in js[:2000], js[:200]
print("wheel check: dashboard healthy: page and vendored Leaflet served")
EOF
grep -q '"msg": "request"' api.log || fail "the API wrote no request log line"

# the installed pages run: sign in as the demo supervisor, see the requests map, and find
# the request the API took in Triage
CURBSIDE_CITY=los_angeles "$VPY" - <<'EOF' || fail "the installed dashboard pages"
import pathlib, curbside_dashboard
from streamlit.testing.v1 import AppTest
app = pathlib.Path(curbside_dashboard.__path__[0]) / "streamlit_app.py"
at = AppTest.from_file(str(app), default_timeout=120).run()
assert not at.exception, at.exception
at.text_input[0].input("supervisor")
at.text_input[1].input("curbside-demo")
at.button[0].click().run()
assert not at.exception, at.exception
metrics = {m.label: m.value for m in at.metric}
assert int(metrics["Requests"].replace(",", "")) > 0, metrics
at.switch_page("app_pages/triage.py").run()
assert not at.exception, at.exception
# Triage lists the oldest 1,000 matches; the new request (bulky items, posted downtown in
# council district 14) is found by narrowing to its category and district, as a supervisor
# would
at.multiselect(key="triage_categories").select("bulky_items").run()
at.multiselect(key="triage_districts").select("14").run()
assert not at.exception, at.exception
posted = open("posted.txt").read().strip()
assert posted in set(at.dataframe[0].value["request id"]), posted
print(f"wheel check: installed pages run: signed in, requests map shows {metrics['Requests']} "
      f"requests, Triage lists {posted} (the API's POST)")
EOF
say "done"
