"""No module of the product names a city: city specifics live only in the city packs.

The packs under ``data/cities/`` name their city (file stem, ``name``, ``display_name``);
code under ``geo/``, ``dispatch/`` and ``app_pages/`` must work for any pack, so none of its
string constants or identifiers may carry one of those names. Docstrings and comments may
use a pack as an example; what runs may not.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from dispatch.citypack import CityPackError, default_city_pack

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("geo", "dispatch", "app_pages")


def _city_names() -> set[str]:
    names: set[str] = set()
    for pack in (ROOT / "data" / "cities").glob("*.toml"):
        data = tomllib.loads(pack.read_text(encoding="utf-8"))
        names.add(pack.stem.lower())
        names.add(str(data.get("name", pack.stem)).lower())
        display = str(data.get("display_name", "")).lower()
        if display:
            names.add(display)
            # "City of Pasadena" -> "pasadena"
            names.add(display.removeprefix("city of ").strip())
    return {n for n in names if n}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _offences(source: str, names: set[str]) -> list[str]:
    """Return the string constants and identifiers of ``source`` that carry a city name."""
    tree = ast.parse(source)
    docs = _docstring_nodes(tree)
    found: list[str] = []
    spellings = names | {n.replace(" ", "_") for n in names}
    for node in ast.walk(tree):
        text: str | None = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        if text is None:
            continue
        low = text.lower()
        for name in spellings:
            if name in low:
                found.append(f"line {getattr(node, 'lineno', '?')}: {text[:60]!r} names {name!r}")
    return found


def test_the_scan_finds_a_city_in_code_and_not_in_a_docstring() -> None:
    names = {"los angeles", "los_angeles"}
    src = 'def f():\n    """Runs on ``los_angeles``."""\n    return "los_angeles"\n'
    assert _offences(src, names) == ["line 3: 'los_angeles' names 'los_angeles'"]
    assert _offences('CITY = "Springfield"\n', names) == []


def test_no_module_of_the_product_names_a_city() -> None:
    names = _city_names()
    assert {"los_angeles", "pasadena"} <= names
    files = [p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py")]
    files.append(ROOT / "streamlit_app.py")
    offences = {
        str(p.relative_to(ROOT)): hits
        for p in files
        if "migrations" not in p.parts and (hits := _offences(p.read_text(encoding="utf-8"), names))
    }
    assert offences == {}


def test_the_default_pack_comes_from_the_environment_then_the_marker_then_the_sole_pack(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURBSIDE_CITY", raising=False)
    (tmp_path / "alpha.toml").write_text("", encoding="utf-8")
    assert default_city_pack(tmp_path) == "alpha"          # the only pack
    (tmp_path / "beta.toml").write_text("", encoding="utf-8")
    with pytest.raises(CityPackError, match=r"holds 2 packs \(alpha, beta\)"):
        default_city_pack(tmp_path)
    (tmp_path / "default.txt").write_text("# the default\n\nbeta\n", encoding="utf-8")
    assert default_city_pack(tmp_path) == "beta"
    monkeypatch.setenv("CURBSIDE_CITY", "alpha")
    assert default_city_pack(tmp_path) == "alpha"


def test_the_shipped_default_is_a_pack_that_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURBSIDE_CITY", raising=False)
    name = default_city_pack()
    assert (ROOT / "data" / "cities" / f"{name}.toml").is_file()
