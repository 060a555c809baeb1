"""Write a benchmark's section of docs/benchmarks.md, keeping every other section."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"


def write_section(title: str, section: str, doc: Path = DOC) -> None:
    """Replace the ``## {title}`` section of ``doc`` with ``section`` (or append it).

    ``section`` starts with its own ``## {title}`` heading.
    """
    old = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", flags=re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _m: section.rstrip("\n") + "\n\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def commit(tree: Path = ROOT) -> str:
    """Return the short id of the commit ``tree`` is at (``unknown`` when git cannot say)."""
    import subprocess

    got = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)
    return got.stdout.strip() or "unknown"


def provenance(command: str, started: str, load: tuple[float, ...], code: str) -> str:
    """Return the sentence that says how, when, on what code and machine a run measured."""
    import platform

    return (f"Command: `{command}` (run from the repository root; measured {started}, one "
            f"run; code of commit `{code}`; machine: {platform.machine()}, Python "
            f"{platform.python_version()}, SQLite; load average at start "
            f"{', '.join(f'{x:.2f}' for x in load)}, on 2 cores shared with other work, so "
            "every time is an upper bound).")


def publish(title: str, section: str, *, write: bool) -> int:
    """Print a benchmark's ``section``; write it into docs/benchmarks.md if ``write``."""
    print(section)
    if write:
        write_section(title, section)
    return 0
