"""The layout's import rules, read from the source with `ast` (nothing is imported).

The package graph (docs/architecture.md): imports point one way, toward the core. `wiring` is
the only composition root; below it nothing reads `Settings`. Exporters are adapters that know
the core's types only. Offline work and the test kit are never imported by the live packages.
Imports under `if TYPE_CHECKING:` are type hints, not dependencies, and are left out.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KAFKA_LIBRARIES = ("faust", "mode", "aiokafka", "kafka")
# The units of the package graph: each stream_app subpackage, each top-level stream_app module,
# each exporters subpackage, and schemas.
LIVE = (
    "stream_app.ingest",
    "stream_app.pipeline",
    "stream_app.engine",
    "stream_app.alerting",
    "stream_app.web",
    "stream_app.wiring",
    "exporters",
)
OFFLINE = ("stream_app.offline", "stream_app.testing", "stream_app.cli")
# What exporters may import of the project: the core's types.
CORE = ("stream_app.pipeline", "stream_app.errors", "stream_app.engine.types", "schemas")
# Who may read Settings: the composition root and what stands above it.
SETTINGS_READERS = (
    "stream_app.wiring",
    "stream_app.cli",
    "stream_app.settings",
    "stream_app.testing",
    "stream_app.offline",
)


def imports(path: Path, skip_type_checking: bool = True) -> set[str]:
    """Every module `path` imports, at the top or inside a function, but not for type checking."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden: set[int] = set()
    if skip_type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                hidden.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def module_of(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str | None:
    """The graph unit a module belongs to (None for third-party modules)."""
    parts = module.split(".")
    if parts[0] == "schemas":
        return "schemas"
    if parts[0] == "exporters":
        return ".".join(parts[:2]) if len(parts) > 1 else "exporters"
    if parts[0] == "stream_app":
        return ".".join(parts[:2]) if len(parts) > 1 else "stream_app"
    return None


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def sources() -> list[Path]:
    return [p for top in ("stream_app", "exporters", "schemas") for p in (REPO / top).rglob("*.py")]


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sources():
        here = unit_of(module_of(path))
        for name in imports(path):
            there = unit_of(name)
            if here and there and there != here and there not in ("stream_app", "exporters"):
                edges[here].add(there)
    return edges


def test_no_cycle_between_packages() -> None:
    edges = graph()
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif len(path) < 12:
                visit(nxt, [*path, nxt])

    for start in sorted(edges):
        visit(start, [start])
    assert not cycles, cycles[:5]


def test_live_packages_import_no_offline_code_or_test_kit() -> None:
    offenders = {
        module_of(path): sorted(n for n in imports(path) if within(n, OFFLINE))
        for path in sources()
        if within(module_of(path), LIVE)
    }
    assert {m: names for m, names in offenders.items() if names} == {}


def test_nothing_below_wiring_reads_settings() -> None:
    offenders = {
        module_of(path): sorted(n for n in imports(path) if within(n, ("stream_app.settings",)))
        for path in sources()
        if not within(module_of(path), SETTINGS_READERS)
    }
    assert {m: names for m, names in offenders.items() if names} == {}


def test_exporters_know_only_the_cores_types() -> None:
    offenders = {
        module_of(path): sorted(
            n for n in imports(path) if n.split(".")[0] == "stream_app" and not within(n, CORE) and n != "stream_app"
        )
        for path in (REPO / "exporters").rglob("*.py")
    }
    assert {m: names for m, names in offenders.items() if names} == {}


def test_only_ingest_imports_faust_or_a_kafka_client() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in imports(path) if within(n, KAFKA_LIBRARIES))
        for path in (REPO / "stream_app").rglob("*.py")
        if "ingest" not in path.relative_to(REPO / "stream_app").parts
    }
    assert {p: names for p, names in offenders.items() if names} == {}


def test_the_rules_see_imports_inside_functions_and_skip_type_hints(tmp_path: Path) -> None:
    assert "kafka.KafkaAdminClient" in imports(REPO / "stream_app" / "ingest" / "kafka_admin.py")
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import faust\n\ndef f():\n    import mode\n"
    )
    assert imports(sample) == {"typing", "typing.TYPE_CHECKING", "mode"}
