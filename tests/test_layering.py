"""Import rules: the core never imports streamlit; only dispatch/store imports sqlalchemy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules(path: Path) -> set[str]:
    """Return every module ``path`` imports, in full (``dispatch.store.models``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _imports(path: Path) -> set[str]:
    """Return the top-level packages ``path`` imports."""
    return {name.split(".")[0] for name in _modules(path)}


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["geo", "dispatch"])
def test_core_never_imports_streamlit(package: str) -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _sources(package)
                 if {"streamlit", "streamlit_folium"} & _imports(p)]
    assert offenders == []


def test_only_the_store_imports_sqlalchemy() -> None:
    store = ROOT / "dispatch" / "store"
    offenders = [
        str(p.relative_to(ROOT))
        for p in _sources("geo") + _sources("dispatch") + _sources("app_pages")
        + [ROOT / "streamlit_app.py"]
        if {"sqlalchemy", "alembic"} & _imports(p) and store not in p.parents
    ]
    assert offenders == []


@pytest.mark.parametrize("package", ["dispatch/services", "app_pages"])
def test_services_and_pages_never_touch_the_orm_models(package: str) -> None:
    """They go through the repositories: rows are made and changed by the store."""
    offenders = [str(p.relative_to(ROOT)) for p in _sources(package)
                 if any(m.startswith("dispatch.store.models") for m in _modules(p))]
    assert offenders == []


def test_pages_never_import_the_planner_internals_or_the_store_models() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _sources("app_pages")
                 if any(m.startswith(("dispatch.store.models", "dispatch.store.uow"))
                        for m in _modules(p))]
    assert offenders == []


def test_geo_does_not_depend_on_dispatch() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _sources("geo") if "dispatch" in _imports(p)]
    assert offenders == []


def test_the_rule_checker_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import streamlit as st\nfrom sqlalchemy.orm import Session\n"
                      "from dispatch.store import models\n")
    assert _imports(sample) == {"streamlit", "sqlalchemy", "dispatch"}
    assert "dispatch.store.models" in _modules(sample)


def test_product_code_never_reads_shared_folder() -> None:
    for package in ("geo", "dispatch", "app_pages"):
        for path in _sources(package):
            assert "../shared" not in path.read_text(encoding="utf-8"), path
