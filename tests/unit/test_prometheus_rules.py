"""Rules and dashboard checked by the tools SREs run: promtool, and PromQL parsing of every panel."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.prom_local import DASHBOARD, REPO, RULES, dashboard_queries, tool

PROM = REPO / "deploy" / "prometheus"


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_rule_files_are_valid_and_their_unit_tests_pass() -> None:
    out = run(tool("promtool"), "check", "rules", *map(str, RULES))
    assert "SUCCESS" in out
    run(tool("promtool"), "check", "config", str(PROM / "prometheus.yml"))
    assert "SUCCESS" in run(tool("promtool"), "test", "rules", str(PROM / "tests" / "rules_test.yml"))


def test_a_broken_rule_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - record: x:y\n        expr: sum(rate(sm_x[5m])\n")
    result = subprocess.run([tool("promtool"), "check", "rules", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())  # valid JSON, or this raises
    assert {p["title"] for p in dashboard["panels"] if p["type"] == "row"} == {"Pipeline", "Brands"}
    queries = dashboard_queries()
    assert len(queries) >= 10
    # promtool parses each expression as a recording rule; one file, one error per bad query.
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"panel:q{i}", "expr": q} for i, (_, q) in enumerate(queries)]}
        ]
    }
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(json.dumps(rules))
    assert f"SUCCESS: {len(queries)} rules found" in run(tool("promtool"), "check", "rules", str(path))


def test_grafana_provisioning_points_at_the_dashboard_and_datasource() -> None:
    import yaml

    grafana = REPO / "deploy" / "grafana"
    source = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text())
    used = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert used == {uid}
    assert yaml.safe_load((grafana / "provisioning" / "dashboards" / "sentiment-monitor.yml").read_text())["providers"]
