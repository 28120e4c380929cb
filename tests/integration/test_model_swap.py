"""Swapping the model live: on real Kafka and Redis (counts exact, each record scored once, by
the model its batch started on), and the swapper's refusals and failures in isolation."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from stream_app.engine.null import NullClassifier
from stream_app.engine.runner import InferenceRunner
from stream_app.engine.swap import ModelSwapper, model_revision
from stream_app.settings import DEFAULT_MODEL_DIR
from stream_app.testing.generate import generate_stream
from stream_app.wiring import create_topics
from tests.support.stack import settings_from
from tests.support.streamkit import (
    assert_counts_equal,
    drain,
    http_get,
    oracle_from_scored,
    produce,
    redis_counts,
    settle,
)

TOKEN = "swap-test-token"

SHIPPED = json.loads((DEFAULT_MODEL_DIR / "labels.json").read_text())["version"]
SWAPPED = f"{SHIPPED}-t2"


def recalibrated_copy(model_dir: Path, target: Path) -> Path:
    """The default model with temperature 2.0 and another version: other scores, same weights."""
    target.mkdir()
    for item in model_dir.iterdir():
        if item.suffix == ".onnx":
            (target / item.name).symlink_to(item)  # same bytes: the derived INT8 cache is shared
        else:
            shutil.copy(item, target / item.name)
    labels = json.loads((model_dir / "labels.json").read_text())
    (target / "labels.json").write_text(json.dumps({**labels, "version": SWAPPED}))
    (target / "calibration.json").write_text(json.dumps({"temperature": 2.0}))
    return target


def post_model(port: str, body: bytes, token: str | None = TOKEN) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/admin/model", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.integration
def test_swap_under_load_keeps_counts_exact(stack_env, worker_factory, model_dir, tmp_path):
    second = recalibrated_copy(model_dir, tmp_path / "model-t2")
    settings = settings_from(stack_env)
    create_topics(settings)
    worker = worker_factory(SM_WEB_TOKEN=TOKEN)
    worker.wait_ready()
    port = worker.env["SM_WEB_PORT"]
    posts = [r for kind, r in generate_stream(6, 60, seed=21) if kind == "post"]
    half = len(posts) // 2
    produce(settings.kafka_bootstrap, settings.topic_posts, [orjson.dumps(p) for p in posts[:half]])

    assert post_model(port, b'{"model_dir": "x"}', token=None)[0] == 401
    status, body = post_model(port, orjson.dumps({"model_dir": str(tmp_path / "missing")}))
    assert status == 422 and "labels.json" in body["error"] and body["active"]["version"] == SHIPPED
    status, body = post_model(port, orjson.dumps({"model_dir": str(second)}))  # while the first half flows
    assert status == 200, body
    assert body["active"]["version"] == SWAPPED and body["active"]["revision"] == model_revision(second)
    produce(settings.kafka_bootstrap, settings.topic_posts, [orjson.dumps(p) for p in posts[half:]])

    scored = drain(settings.kafka_bootstrap, settings.topic_scored, len(posts))
    ids = [e["id"] for e in scored]
    assert sorted(ids) == sorted(p["id"] for p in posts), "each record scored exactly once across the swap"
    versions = {e["id"]: e["model_version"] for e in scored}
    assert {versions[p["id"]] for p in posts[half:]} == {SWAPPED}, "records produced after the swap"
    assert set(versions.values()) <= {SHIPPED, SWAPPED}
    sources = {e["platform"].lower() for e in scored}
    expected = oracle_from_scored(scored)
    from datetime import datetime

    from stream_app.pipeline.counts import minute_of

    minutes = {minute_of(datetime.fromisoformat(p["created_at"]).timestamp()) for p in posts}
    actual = settle(
        lambda: redis_counts(settings, sources, minutes),
        lambda a: set(a) == set(expected) and all(a[k].volume == v.volume for k, v in expected.items()),
    )
    assert_counts_equal(actual, expected)
    status, exposition = http_get(f"http://127.0.0.1:{port}/metrics", TOKEN)
    text = exposition.decode()
    active_line = text.split("sm_model_info")[1].split("\n")[0]
    assert f'version="{SWAPPED}"' in text and f'version="{SHIPPED}"' not in active_line
    assert 'sm_model_swaps_total{outcome="ok"} 1.0' in text
    assert 'sm_model_swaps_total{outcome="failed"} 1.0' in text


async def test_swapper_refuses_without_token_bad_bodies_and_keeps_the_old_model_on_failure(tmp_path):
    from prometheus_client import CollectorRegistry

    from exporters.prometheus.metrics import PipelineMetrics
    from stream_app.web.admin import swap_model
    from stream_app.web.routes import WORKER_ROUTES, Site

    def load(path: Path) -> NullClassifier:
        if path.name == "broken":
            raise RuntimeError("weights are corrupt")
        return NullClassifier(version=path.name)

    runner = InferenceRunner(NullClassifier(version="old"))
    await runner.start()
    try:
        metrics = PipelineMetrics(CollectorRegistry())
        floors: list[dict[str, float]] = []
        swapper = ModelSwapper(runner, load, Path("old"), metrics, lambda model, _: floors.append(model.label_floors()))
        route = next(r for r in WORKER_ROUTES if r.path == "/admin/model")

        async def post(body: bytes, token: bool = True) -> tuple[int, dict]:  # type: ignore[type-arg]
            site = Site(
                None, None, [], lambda: True, lambda: b"", token=token, swap_model=lambda b: swap_model(swapper, b)
            )
            return await route.handler(site, {}, body=body)  # type: ignore[no-any-return]

        assert (await post(b'{"model_dir": "new"}', token=False))[0] == 403
        assert (await post(b"not json"))[0] == 400
        assert (await post(b'{"model_dir": 3}'))[0] == 400
        status, body = await post(b'{"model_dir": "broken"}')
        assert status == 422 and "weights are corrupt" in body["error"]
        assert runner.classifier.info.version == "old"
        assert metrics.registry.get_sample_value("sm_model_swaps_total", {"outcome": "failed"}) == 1
        status, body = await post(b'{"model_dir": "new"}')
        assert status == 200 and body["active"]["version"] == "new"
        assert len(floors) == 1  # the detector hears the new model's label floors
        assert (await runner.classify_versioned(["x"]))[1].version == "new"
        # SIGHUP re-reads the setting: unchanged is a no-op, a new directory swaps.
        assert swapper.reload(lambda: Path("new")) is None
        task = swapper.reload(lambda: Path("newer"))
        assert task is not None
        await task
        assert runner.classifier.info.version == "newer"
        swapper.on_sighup(lambda: Path("via-signal"))  # the worker's real trigger
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(250):
                if runner.classifier.info.version == "via-signal":
                    break
                await asyncio.sleep(0.02)
        finally:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        assert runner.classifier.info.version == "via-signal"
    finally:
        await runner.stop()
