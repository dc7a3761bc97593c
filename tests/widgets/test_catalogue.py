"""Every string the widgets and instructor pages show is extracted and has its Spanish."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "widgets" / "translations"


def _ids(path: Path) -> set[object]:
    with open(path, "rb") as f:
        return {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}


def test_the_template_is_current_and_spanish_is_complete(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
         "widgets/babel.cfg", "-k", "_", "-k", "gettext", "-k", "ngettext:1,2",
         "--no-location", "--omit-header", "-o", str(fresh), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    assert _ids(fresh) == _ids(TRANSLATIONS / "messages.pot"), (
        "strings changed: re-run the extract command in docs/widgets.md and translate_es.py"
    )
    with open(TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale="es")
    untranslated = [
        m.id
        for m in catalog
        if m.id and not (all(m.string) if isinstance(m.string, tuple | list) else m.string)
    ]
    assert untranslated == []
