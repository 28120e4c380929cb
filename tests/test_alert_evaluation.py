"""`alerts scenarios` and `alerts evaluate` through the CLI, and the matching rules on a hand-made case."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stream_app.alerting.detector import Evidence, Transition
from stream_app.alerting.evaluate import score
from stream_app.cli import app

EV = Evidence(0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def firing(entity: str, at: int) -> Transition:
    return Transition(entity, "firing", "id", "warning", at - 60, at, EV)


def test_matching_follows_the_issue_rules() -> None:
    truth = [{"entity": "A", "start": 1000, "end": 2000}, {"entity": "B", "start": 1000, "end": 1600}]
    firings = [
        firing("A", 1300),  # TP, delay 300
        firing("A", 2250),  # TP: inside end + grace (300)
        firing("A", 2400),  # FP: past the grace
        firing("B", 900),  # FP: before the start
        firing("C", 1200),  # FP: no spike for C
    ]
    report, delays, false = score(firings, truth, entities=3, days=2.0, window_s=300)
    assert (report.true_positives, report.false_positives) == (2, 3)
    assert report.recall == 0.5 and delays == {0: 300}
    assert report.median_delay_s == 300 and report.median_delay_windows == 1.0
    assert report.false_alerts_per_entity_per_day == 0.5
    assert report.precision == 0.4
    assert [(f.entity, f.at) for f in false] == [("A", 2400), ("B", 900), ("C", 1200)]


def test_scenarios_then_evaluate_writes_the_documented_json(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["alerts", "scenarios", "--out", str(tmp_path), "--days", "2", "--small", "--seed", "3"])
    assert made.exit_code == 0, made.output
    first = json.loads((tmp_path / "events.jsonl").open().readline())
    assert set(first) == {"id", "entity", "ts", "label", "score"}
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["spikes"] and set(truth["spikes"][0]) == {"entity", "start", "end"}

    out = tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "alerts",
            "evaluate",
            "--events",
            str(tmp_path / "events.jsonl"),
            "--truth",
            str(tmp_path / "truth.json"),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    for key in ("precision", "recall", "median_delay_s", "false_alerts_per_entity_per_day"):
        assert key in report
    assert report["spikes"] == len(truth["spikes"]) and report["entities"] == 6
    assert report["recall"] >= 0.5  # the small suite's spikes are large; a broken detector finds none
    assert "targeted_recall" in report["details"]  # the manifest beside the events was picked up


def test_evaluate_rejects_malformed_events(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text('{"id": "1", "entity": "A", "ts": 1, "label": "angry", "score": 0}\n')
    (tmp_path / "truth.json").write_text('{"spikes": []}')
    result = CliRunner().invoke(
        app, ["alerts", "evaluate", "--events", str(tmp_path / "events.jsonl"), "--truth", str(tmp_path / "truth.json")]
    )
    assert result.exit_code != 0 and "unknown label" in str(result.exception) + result.output
