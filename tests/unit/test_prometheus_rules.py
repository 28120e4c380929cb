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


def _datasource_refs(node: object) -> list[dict[str, str]]:
    if isinstance(node, dict):
        found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
        return found + [ref for value in node.values() for ref in _datasource_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _datasource_refs(value)]
    return []


def test_grafana_dashboard_imports_and_provisions() -> None:
    """Import: every Prometheus reference is the `DS_PROMETHEUS` input, so Grafana's import
    dialog asks for a datasource and substitutes it. Provisioning (no import step): a
    datasource variable of the same name resolves `${DS_PROMETHEUS}` to the provisioned
    default Prometheus."""
    import yaml

    grafana = REPO / "deploy" / "grafana"
    dashboard = json.loads(DASHBOARD.read_text())
    assert [(i["name"], i["type"], i["pluginId"]) for i in dashboard["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    refs = [r for r in _datasource_refs(dashboard) if r.get("type") == "prometheus"]
    assert len(refs) >= 12 and {r["uid"] for r in refs} == {"${DS_PROMETHEUS}"}
    assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in dashboard["panels"] for t in p.get("targets", []))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"

    source = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    provisioned = source["datasources"][0]
    assert provisioned["type"] == "prometheus" and provisioned["isDefault"] is True
    # What the import dialog does: substitute the chosen datasource's uid everywhere.
    imported = json.loads(DASHBOARD.read_text().replace("${DS_PROMETHEUS}", provisioned["uid"]))
    assert {r["uid"] for r in _datasource_refs(imported) if r.get("type") == "prometheus"} == {provisioned["uid"]}
    assert yaml.safe_load((grafana / "provisioning" / "dashboards" / "sentiment-monitor.yml").read_text())["providers"]
