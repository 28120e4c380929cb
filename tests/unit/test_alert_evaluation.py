"""`alerts scenarios` and `alerts evaluate` through the CLI, and the matching rules on a hand-made case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream_app.alerting.detector import Evidence, Transition
from stream_app.cli import app
from stream_app.offline.evaluate import score

EV = Evidence(0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def firing(entity: str, at: int) -> Transition:
    return Transition(entity, "firing", "id", "warning", at - 60, at, EV)


def evaluate_args(suite: Path) -> list[str]:
    return ["alerts", "evaluate", "--events", str(suite / "events.jsonl"), "--truth", str(suite / "truth.json")]


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
    result = runner.invoke(app, [*evaluate_args(tmp_path), "--json", str(out)])
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


REPO = Path(__file__).resolve().parents[2]
DEV_TEXTS = REPO.parent / "shared" / "data" / "tweeteval_val.csv"  # CI lays shared/ beside the clone
MODEL = REPO / "models" / "default"


def test_end_to_end_with_real_texts_and_the_shipped_model(tmp_path: Path) -> None:
    """Texts drawn by gold label, scored by the shipped model, then the detector. Sensible
    behaviour, not figures: the model's labels see spikes the gold labels see, and it does not
    page all week on the entities without spikes."""
    if not DEV_TEXTS.exists() or not MODEL.exists():
        pytest.skip("needs the TweetEval validation texts and models/default")
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "alerts",
            "scenarios",
            "--out",
            str(tmp_path),
            "--days",
            "2",
            "--small",
            "--seed",
            "5",
            "--texts",
            str(DEV_TEXTS),
        ],
    )
    assert made.exit_code == 0, made.output
    first = json.loads((tmp_path / "events.jsonl").open().readline())
    assert {"text", "gold"} <= set(first) and first["gold"] == first["label"]
    reports = {}
    for name, extra in (("gold", []), ("model", ["--score-with", str(MODEL)])):
        out = tmp_path / f"{name}.json"
        result = runner.invoke(app, [*evaluate_args(tmp_path), "--json", str(out), *extra])
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(out.read_text())
    gold, model = reports["gold"], reports["model"]
    assert model["details"]["labels"].startswith("model") and gold["details"]["labels"] == "events' labels"
    assert gold["recall"] >= 0.5 and gold["precision"] >= 0.5
    assert 0 < model["spikes_detected"] <= model["spikes"]  # it hears some spikes through the model
    assert model["false_alerts_per_entity_per_day"] <= 1.0


def test_score_with_does_not_need_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stream_app.offline import evaluate as ev
    from stream_app.offline import model_labels

    lines = [
        b'{"id": "1", "entity": "A", "ts": 60, "text": "awful"}',
        b'{"id": "2", "entity": "A", "ts": 61, "text": "ok"}',
    ]
    monkeypatch.setattr(model_labels, "label_texts", lambda _dir, texts: {"awful": "negative", "ok": "neutral"})
    counts, first, last = ev.read_events(lines, Path("model"))
    assert counts["A"][60] == [1, 2] and first == last == 60
    with pytest.raises(ev.EvaluationInputError, match="label"):
        ev.read_events(lines)
