"""docs/architecture.md is the one description of the layout, and it names real files: every
path it mentions must exist (so a move or a rename that forgets the docs fails here)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PATH = re.compile(r"`((?:stream_app|exporters|schemas|tests|bench|deploy|docs|scripts)/[\w./-]*)`")


def test_every_path_in_the_architecture_doc_exists() -> None:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = sorted(set(PATH.findall(text)))
    assert len(named) >= 30, "the doc names the layout's files"
    missing = [p for p in named if not (REPO / p.rstrip("/")).exists()]
    assert missing == []


def test_readme_and_design_point_to_it() -> None:
    for doc in ("README.md", "docs/design.md"):
        assert "docs/architecture.md" in (REPO / doc).read_text(encoding="utf-8"), doc
