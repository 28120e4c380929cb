"""Debian's Prometheus server and promtool, run from tests on loopback."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.receivers import LocalServer, start_until_ready

REPO = Path(__file__).resolve().parents[2]
RULES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "sentiment-monitor.json"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (scripts/setup installs Debian's prometheus package)"
    return path


def dashboard_queries(rate_interval: str = "1m") -> list[tuple[str, str]]:
    """(title, PromQL) for every panel target and annotation, with Grafana's variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    found += [(f"annotation {a['name']}", a["expr"]) for a in dashboard["annotations"]["list"] if "expr" in a]
    return [(title, expr.replace("$__rate_interval", rate_interval).replace("$entity", ".*")) for title, expr in found]


class LocalPrometheus(LocalServer):
    def __init__(self, workdir: Path, targets: list[str], interval: str = "1s", bearer_token: str = "") -> None:
        super().__init__(workdir)
        self.targets = targets
        self.interval = interval
        self.bearer_token = bearer_token

    def __enter__(self) -> LocalPrometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for rule in RULES:
            shutil.copy(rule, self.workdir / rule.name)
        job: dict[str, Any] = {"job_name": "sentiment-monitor", "static_configs": [{"targets": self.targets}]}
        if self.bearer_token:
            job["authorization"] = {"credentials": self.bearer_token}
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
                    "rule_files": [r.name for r in RULES],
                    "scrape_configs": [job],
                }
            )
        )
        command = [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.process = start_until_ready(command, self.workdir / "prometheus.log", f"{self.url}/-/ready", 60)
        return self

    def query_range(self, expr: str, seconds: float, step: str = "1s") -> list[dict[str, Any]]:
        end = time.time()
        params = urllib.parse.urlencode({"query": expr, "start": end - seconds, "end": end, "step": step})
        with urllib.request.urlopen(f"{self.url}/api/v1/query_range?{params}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return list(body["data"]["result"])
