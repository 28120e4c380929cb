"""What an install carries: resources resolve from a checkout, setup.py ships the same files,
`--version` matches the metadata. The wheel itself is built and run by scripts/check_wheel."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from stream_app import resources
from stream_app.settings import DEFAULT_MODEL_DIR

REPO = Path(__file__).resolve().parents[2]


def test_resources_resolve_in_a_checkout():
    assert resources.default_model_dir() == REPO / "models" / "default" == DEFAULT_MODEL_DIR
    assert (resources.default_model_dir() / "labels.json").is_file()
    assert resources.demo_watchlist() == REPO / "deploy" / "watchlist" / "demo.yaml"
    assert resources.kafka_pom() == REPO / "deploy" / "kafka" / "pom.xml"
    assert all(path.exists() for path in (resources.demo_watchlist(), resources.kafka_pom()))


def test_packaged_copies_win_when_present(tmp_path, monkeypatch):
    (tmp_path / "models" / "default").mkdir(parents=True)
    (tmp_path / "watchlist").mkdir()
    (tmp_path / "watchlist" / "demo.yaml").write_text("brands: {}\n")
    monkeypatch.setattr(resources, "DATA_DIR", tmp_path)
    assert resources.default_model_dir() == tmp_path / "models" / "default"
    assert resources.demo_watchlist() == tmp_path / "watchlist" / "demo.yaml"
    assert resources.kafka_pom() == REPO / "deploy" / "kafka" / "pom.xml"  # not packaged here: the checkout's


def test_setup_py_ships_what_resources_reads():
    tree = ast.parse((REPO / "setup.py").read_text())
    shipped = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SHIPPED" for t in node.targets)
    )
    assert shipped == resources.SHIPPED
    manifest = (REPO / "MANIFEST.in").read_text()
    for source in shipped.values():
        assert source in manifest, f"MANIFEST.in does not put {source} in the sdist"


def test_version_flag_matches_the_metadata():
    want = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    result = subprocess.run(
        [sys.executable, "-m", "stream_app.cli", "--version"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sentiment-monitor {want}"


def test_license_file_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
