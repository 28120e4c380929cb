"""The CLI names heads: `score --domain`, `model evaluate` (each file's own domain, or
`--domain`), `model calibrate` per head; `model evaluate` runs without torch."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stream_app.engine.types import DOMAINS
from stream_app.offline.model.data import DOMAIN_OF_FILE, domain_of_file
from tests.unit.test_cli import REPO, cli
from tests.unit.test_engine_heads import EXPECTED, _model_dir


@pytest.fixture
def heads_model(tmp_path: Path) -> Path:
    """The hand-built heads graph (social -> negative, finance -> neutral, reviews -> positive),
    with its FP32 file also under the INT8 name so no derivation runs."""
    model = _model_dir(tmp_path / "heads", "heads")
    shutil.copy(model / "model.fp32.onnx", model / "model.int8.onnx")
    return model


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def test_score_domain_picks_the_head_and_json_rows_name_it(heads_model):
    for domain in DOMAINS:
        result = cli("score", "--model", str(heads_model), "--json", "--domain", domain, "one", "two")
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [(r["label"], r["domain"]) for r in rows] == [(EXPECTED[domain], domain)] * 2
    default = cli("score", "--model", str(heads_model), "one")
    assert default.returncode == 0 and default.stdout.split()[0] == "negative"  # social by default
    wrong = cli("score", "--model", str(heads_model), "--domain", "sports", "one")
    assert wrong.returncode == 2 and "sports" in wrong.stderr


def test_evaluate_scores_each_file_with_its_own_domain_or_the_named_one(heads_model, tmp_path):
    finance = _csv(tmp_path / "financial_tweets_train_holdout.csv", [("up", "neutral"), ("down", "neutral")])
    tweets = _csv(tmp_path / "tweeteval_val.csv", [("a", "negative"), ("b", "neutral"), ("c", "negative")])
    out = tmp_path / "eval.json"
    result = cli("model", "evaluate", "--model", str(heads_model), "--data", str(finance), "--data", str(tweets))
    assert result.returncode == 0, result.stderr
    result = cli(
        "model",
        "evaluate",
        "--model",
        str(heads_model),
        "--data",
        str(finance),
        "--data",
        str(tweets),
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    files = report["files"]
    assert files["financial_tweets_train_holdout"]["domain"] == "finance"
    assert files["financial_tweets_train_holdout"]["accuracy"] == 1.0  # the finance head says neutral
    assert files["tweeteval_val"]["domain"] == "social"
    assert files["tweeteval_val"]["accuracy"] == pytest.approx(2 / 3)  # the social head says negative
    assert report["heads"] == list(DOMAINS)
    assert report["per_domain"]["finance"]["files"] == ["financial_tweets_train_holdout"]
    assert report["per_domain"]["reviews"] == {"files": [], "mean_macro_f1": None}
    named = cli(
        "model",
        "evaluate",
        "--model",
        str(heads_model),
        "--data",
        str(tweets),
        "--domain",
        "finance",
        "--json",
        str(out),
    )
    assert named.returncode == 0, named.stderr
    assert json.loads(out.read_text())["files"]["tweeteval_val"]["domain"] == "finance"


def test_calibrate_fits_one_calibration_per_head_on_its_own_files(heads_model, tmp_path):
    finance = _csv(tmp_path / "financial_tweets_train_holdout.csv", [("x", "neutral")] * 5 + [("y", "negative")])
    tweets = _csv(tmp_path / "tweeteval_val.csv", [("a", "negative")] * 4 + [("b", "neutral"), ("c", "positive")])
    reviews = _csv(tmp_path / "sst2_dev.csv", [("d", "positive")] * 3 + [("e", "negative")])
    args = ["--data", str(finance), "--data", str(tweets), "--data", str(reviews)]
    result = cli("model", "calibrate", "--model", str(heads_model), *args)
    assert result.returncode == 0, result.stderr
    heads = json.loads((heads_model / "calibration.json").read_text())["heads"]
    assert {d: h["report"]["fitted_on"] for d, h in heads.items()} == {
        "social": ["tweeteval_val"],
        "finance": ["financial_tweets_train_holdout"],
        "reviews": ["sst2_dev"],
    }
    assert heads["reviews"]["bias"] == [0.0, 0.0, 0.0]  # binary-only head: no bias
    assert heads["reviews"]["offsets"][0] == -heads["reviews"]["offsets"][2]  # one polarity shift
    flat = cli("model", "calibrate", "--model", str(heads_model), "--flat", *args)
    assert flat.returncode == 0, flat.stderr
    assert "heads" not in json.loads((heads_model / "calibration.json").read_text())


def test_model_evaluate_runs_without_torch(heads_model, tmp_path):
    """A service install has no torch: `model evaluate` must not import it."""
    tweets = _csv(tmp_path / "tweeteval_val.csv", [("a", "negative"), ("b", "neutral")])
    argv = ["sentiment-monitor", "model", "evaluate", "--model", str(heads_model), "--data", str(tweets)]
    code = (
        "import runpy, sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "
        f"sys.argv = {argv!r}; runpy.run_module('stream_app.cli', run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "tweeteval_val" in result.stdout


def test_one_table_says_which_head_reads_each_file():
    assert domain_of_file(Path("x/financial_tweets_train_holdout.csv")) == "finance"
    assert domain_of_file("sst2_dev") == "reviews"
    assert domain_of_file("airline_tweets_holdout") == "social"
    assert set(DOMAIN_OF_FILE.values()) <= set(DOMAINS)
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_default", REPO / "scripts" / "train_default.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.DOMAIN_OF_FILE is DOMAIN_OF_FILE  # training uses the same table, imported
