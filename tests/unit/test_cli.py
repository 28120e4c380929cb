"""The console script's user-facing commands, run as a user would."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "stream_app.cli", *args],
        cwd=REPO,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_score_arguments_and_stdin():
    result = cli("score", "I absolutely love it", "Terrible, broken on day one")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("positive") and lines[1].startswith("negative")
    piped = cli("score", stdin="great stuff\nawful stuff\n")
    assert [line.split()[0] for line in piped.stdout.strip().splitlines()] == ["positive", "negative"]


def test_evaluate_writes_the_stable_json_interface(tmp_path):
    three = tmp_path / "three.csv"
    binary = tmp_path / "binary.csv"
    rows3 = [("I love this so much", "positive"), ("This is awful", "negative"), ("The store opens at 9", "neutral")]
    rows2 = [("A wonderful film", "positive"), ("A dreadful, boring film", "negative")]
    for path, rows in ((three, rows3), (binary, rows2)):
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows * 3)
    out = tmp_path / "eval.json"
    result = cli(
        "model",
        "evaluate",
        "--model",
        "models/default",
        "--data",
        str(three),
        "--data",
        str(binary),
        "--json",
        str(out),
        "--limit",
        "5",
    )
    assert result.returncode == 0, result.stderr
    assert "macro-F1" in result.stdout and "confusion" in result.stdout
    files = json.loads(out.read_text())["files"]
    assert set(files) == {"three", "binary"}
    assert files["three"]["n"] == 5 and files["binary"]["n"] == 5
    for metrics in files.values():
        assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    assert files["binary"]["labels"] == ["negative", "positive"]


def test_bad_setting_exits_with_a_clear_message():
    result = cli("score", "x", env={"SM_MAX_LENGTH": "4"})
    assert result.returncode == 2
    assert "SM_MAX_LENGTH" in result.stderr


@pytest.mark.integration
def test_dev_up_status_down(tmp_path):
    up = cli("dev", "up")
    assert up.returncode == 0, up.stderr
    settings = dict(line.split("=", 1) for line in up.stdout.strip().splitlines() if "=" in line)
    try:
        host, port = settings["SM_KAFKA_BOOTSTRAP"].rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=5).close()
        redis_port = int(settings["SM_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
        socket.create_connection(("127.0.0.1", redis_port), timeout=5).close()
        assert cli("dev", "status").returncode == 0
    finally:
        assert cli("dev", "down").returncode == 0
    assert cli("dev", "status").returncode == 1


@pytest.mark.integration
def test_generate_then_replay_into_kafka(kafka, tmp_path):
    from stream_app.settings import load_settings
    from stream_app.wiring import create_topics
    from tests.support.streamkit import drain

    feed = tmp_path / "feed"
    generated = cli("generate", "--out", str(feed), "--minutes", "2", "--per-minute", "30")
    assert generated.returncode == 0, generated.stderr
    posts = (feed / "posts.jsonl").read_text().splitlines()
    topic = f"replay-{tmp_path.name}"
    create_topics(load_settings(kafka_bootstrap=kafka.bootstrap, topic_posts=topic))
    env = {"SM_KAFKA_BOOTSTRAP": kafka.bootstrap}
    replayed = cli("replay", str(feed / "posts.jsonl"), "--topic", topic, "--rate", "500", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert f"sent {len(posts)} records" in replayed.stdout
    received = drain(kafka.bootstrap, topic, len(posts), timeout=60, settle=1)
    assert sorted(r["id"] for r in received) == sorted(json.loads(p)["id"] for p in posts)


def test_score_json_matches_the_engine_and_plain_output_is_one_line_per_input(model_dir):
    from stream_app.engine.onnx_classifier import OnnxClassifier

    texts = ["I absolutely love it", "Terrible, broken on day one", "a line\nwith a newline " + "long " * 80]
    result = cli("score", "--json", *texts)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = OnnxClassifier(model_dir, provider="cpu").classify(texts)
    assert [r["label"] for r in rows] == [e.label for e in expected]
    for row, sentiment in zip(rows, expected, strict=True):
        assert set(row) == {"label", "score", "probabilities", "domain"} and row["domain"] == "social"
        assert row["score"] == pytest.approx(sentiment.score, abs=1e-6)
        assert row["probabilities"] == pytest.approx(sentiment.probabilities, abs=1e-6)
    narrow = cli("score", "--model", str(model_dir), *texts, env={"COLUMNS": "20"})
    assert narrow.returncode == 0, narrow.stderr
    assert len(narrow.stdout.splitlines()) == len(texts)
    assert [line.split()[0] for line in narrow.stdout.splitlines()] == [e.label for e in expected]
