"""The engine is pure: no framework, database, queue or HTTP imports, and no wall-clock reads."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"
MODULES = sorted(
    "engine" if path.stem == "__init__" else f"engine.{path.stem}" for path in ENGINE.glob("*.py")
)
FORBIDDEN = ("flask", "sqlalchemy", "redis", "rq", "requests", "psycopg", "werkzeug", "fakeredis")


def test_engine_modules_are_all_found() -> None:
    # Guards the scans below against silently checking nothing.
    assert {
        "engine",
        "engine.decisions",
        "engine.evaluate",
        "engine.events",
        "engine.levels",
        "engine.rules",
        "engine.streaks",
    } <= set(MODULES)


def test_importing_the_engine_loads_no_infrastructure() -> None:
    script = textwrap.dedent(
        f"""
        import importlib, json, sys
        for name in {MODULES!r}:
            importlib.import_module(name)
        print(json.dumps({{
            "engine": sorted(m for m in sys.modules if m == "engine" or m.startswith("engine.")),
            "loaded": sorted(
                m for m in sys.modules
                if m.split(".")[0] in {FORBIDDEN!r}
            ),
        }}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(MODULES) <= set(report["engine"])  # the imports really happened
    assert report["loaded"] == []


WALL_CLOCK = re.compile(
    r"\b(?:datetime\.now|datetime\.utcnow|utcnow|date\.today|datetime\.today"
    r"|time\.time|time\.time_ns|time\.monotonic|time\.perf_counter|time\.localtime"
    r"|time\.gmtime)\b"
)
# Attribute names that read a clock on whatever object (``datetime.time()`` is a component of a
# passed-in moment, not a clock read; ``import time`` is refused outright instead).
CLOCK_CALLS = {
    "now",
    "utcnow",
    "today",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "localtime",
    "gmtime",
}


def clock_reads(source: str) -> list[str]:
    """Wall-clock reads in ``source``, found by text and by syntax tree."""
    found = [m.group(0) for m in WALL_CLOCK.finditer(source)]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in CLOCK_CALLS:
            found.append(f".{node.attr}")
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name == "time")
        elif isinstance(node, ast.ImportFrom) and node.module == "time":
            found.append("from time import ...")
    return found


def forbidden_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] in FORBIDDEN
        ):
            found.append(node.module)
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "from datetime import datetime\nx = datetime.now()",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "import time\nx = time.time()",
        "from time import monotonic\nx = monotonic()",
        "from datetime import datetime as dt\nx = dt.now(tz=None)",
    ],
)
def test_the_scanner_catches_clock_reads(snippet: str) -> None:
    assert clock_reads(snippet), snippet


def test_the_scanner_allows_passed_in_time() -> None:
    snippet = "def day(moment):\n    return moment.astimezone().date()\n"
    assert clock_reads(snippet) == []


@pytest.mark.parametrize("path", sorted(ENGINE.glob("*.py")), ids=lambda p: p.name)
def test_no_wall_clock_reads(path: Path) -> None:
    assert clock_reads(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", sorted(ENGINE.glob("*.py")), ids=lambda p: p.name)
def test_no_infrastructure_imports_in_source(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []
