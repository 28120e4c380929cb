"""The layout's import rules, read from the source with `ast` (nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KAFKA_LIBRARIES = ("faust", "mode", "aiokafka", "kafka")
EXPORTER_MAY_NOT_IMPORT = (
    "stream_app.ingest",
    "stream_app.web",
    "stream_app.cli",
    "stream_app.cli.alerts",
    "stream_app.wiring",
    "stream_app.alerting.service",
    "stream_app.devtools",
)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_only_ingest_imports_faust_or_a_kafka_client() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in imports(path) if within(n, KAFKA_LIBRARIES))
        for path in (REPO / "stream_app").rglob("*.py")
        if "ingest" not in path.relative_to(REPO / "stream_app").parts
    }
    assert {p: names for p, names in offenders.items() if names} == {}


def test_exporters_do_not_import_the_stream_app_edges() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in imports(path) if within(n, EXPORTER_MAY_NOT_IMPORT))
        for path in (REPO / "exporters").rglob("*.py")
    }
    assert {p: names for p, names in offenders.items() if names} == {}


def test_the_rules_see_imports_inside_functions() -> None:
    assert "kafka.KafkaAdminClient" in imports(REPO / "stream_app" / "ingest" / "kafka_admin.py")
