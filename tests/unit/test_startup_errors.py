"""Each configuration or connectivity problem at start-up is one stderr line and exit status 2,
run as a user would (the CLI in a subprocess); `check` reports what is down in a table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream_app.testing.kafka_local import free_port
from tests.support.stack import REPO


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream_app.cli", *args],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), "SM_STARTUP_WAIT_S": "0", **env},
    )


def closed() -> str:
    """An address nothing listens on."""
    return f"127.0.0.1:{free_port()}"


def one_line_error(result: subprocess.CompletedProcess[str], *named: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in named:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def watchlists(tmp_path: Path) -> dict[str, Path]:
    files = {"invalid": "entities:\n  - name: [unclosed\n", "list": "- name: Tesla\n  aliases: [$TSLA]\n"}
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return {name: tmp_path / f"{name}.yaml" for name in files}


def test_missing_model_dir(tmp_path: Path) -> None:
    one_line_error(cli("score", "hi", SM_MODEL_DIR=str(tmp_path / "nope")), "SM_MODEL_DIR", "does not exist")
    one_line_error(cli("worker", SM_MODEL_DIR=str(tmp_path / "nope")), "SM_MODEL_DIR")


def test_model_dir_without_labels_or_onnx(tmp_path: Path) -> None:
    one_line_error(cli("score", "hi", SM_MODEL_DIR=str(tmp_path)), "SM_MODEL_DIR", "labels.json")
    (tmp_path / "labels.json").write_text('{"labels": ["negative", "neutral", "positive"]}')
    (tmp_path / "tokenizer.json").write_text("{}")
    one_line_error(cli("score", "hi", SM_MODEL_DIR=str(tmp_path)), "SM_MODEL_DIR", "model.fp16.onnx")


def test_invalid_watchlist_is_named_before_the_model_loads(watchlists: dict[str, Path], tmp_path: Path) -> None:
    # The model directory is missing too: the watch-list error wins, so it was checked first.
    result = cli("worker", SM_WATCHLIST=str(watchlists["invalid"]), SM_MODEL_DIR=str(tmp_path / "nope"))
    one_line_error(result, str(watchlists["invalid"]), "SM_WATCHLIST", "not valid YAML")


def test_list_shaped_watchlist(watchlists: dict[str, Path]) -> None:
    result = cli("worker", SM_WATCHLIST=str(watchlists["list"]))
    one_line_error(result, str(watchlists["list"]), "SM_WATCHLIST", "list")


def test_kafka_on_a_closed_port() -> None:
    result = cli("worker", SM_KAFKA_BOOTSTRAP=closed(), SM_REDIS_URL=f"redis://{closed()}/0")
    one_line_error(result, "SM_KAFKA_BOOTSTRAP", "unreachable")


@pytest.mark.parametrize("command", [["query", "Tesla"], ["counts"]])
def test_redis_down_fails_fast(command: list[str]) -> None:
    started = time.monotonic()
    result = cli(*command, SM_REDIS_URL=f"redis://{closed()}/0")
    one_line_error(result, "SM_REDIS_URL", "Redis")
    # The probe gives up after 3 s (it took 13 s before); the rest is start-up on a shared, busy CI box.
    assert time.monotonic() - started < 20


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = cli("--debug", "score", "hi", SM_MODEL_DIR=str(tmp_path / "nope"))
    assert result.returncode == 2 and "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_check_reports_redis_and_kafka_down() -> None:
    result = cli("check", "--timeout", "1", SM_KAFKA_BOOTSTRAP=closed(), SM_REDIS_URL=f"redis://{closed()}/0")
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") >= 3}
    assert {"settings", "model", "watch-list", "redis", "kafka"} <= set(rows)
    assert "ok" in rows["settings"] and "ok" in rows["model"] and "ok" in rows["watch-list"]
    assert "FAIL" in rows["redis"] and "FAIL" in rows["kafka"]


def test_check_reports_invalid_settings() -> None:
    result = cli("check", SM_MAX_LENGTH="4")
    assert result.returncode == 1 and "SM_MAX_LENGTH" in result.stdout


@pytest.mark.integration
def test_check_passes_against_real_services(kafka, redis_server) -> None:  # type: ignore[no-untyped-def]
    result = cli("check", SM_KAFKA_BOOTSTRAP=kafka.bootstrap, SM_REDIS_URL=redis_server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
