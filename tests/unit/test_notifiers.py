"""Sinks against real local HTTP servers: payload shapes, retries, and never blocking the caller."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from tenacity import AsyncRetrying, stop_after_attempt, wait_none

from exporters.alerts_http.notifiers import AlertmanagerNotifier, Fanout, WebhookNotifier, slack_payload
from exporters.prometheus.metrics import PipelineMetrics
from schemas.models import Alert
from stream_app.alerting.detector import DetectorParams, Evidence, Transition
from stream_app.alerting.explain import build_alert
from stream_app.pipeline.counts import Counts
from stream_app.pipeline.samples import PostSample
from tests.support.receivers import LocalAlertmanager, Receiver

T = 1_764_547_200


def make_alert(status: str = "firing") -> Alert:
    evidence = Evidence(T + 3600, 30, 50, 0.6, 0.2, 48.0, 9.1, 0.46, 7.1)
    transition = Transition("Veltro Motors", status, "abc123", "critical", T + 3480, T + 3660, evidence)  # type: ignore[arg-type]
    posts = [
        PostSample(f"p{i}", T + 3500 + i, "negative", -0.9, "x", f"Veltro home charger caught fire again #{i}")
        for i in range(6)
    ] + [PostSample(f"b{i}", T + 100 + i, "negative", -0.7, "x", "Veltro service was slow") for i in range(30)]
    sources = {"x": Counts.of(20, 5, 5, -10.0), "reviews": Counts.of(10, 5, 5, -2.0)}
    return build_alert(
        transition, DetectorParams(), posts, sources, "http://127.0.0.1:6066/dashboard", frozenset({"veltro"})
    )


def test_alert_payload_explains_itself() -> None:
    alert = make_alert()
    assert alert.status == "firing" and alert.ends_at is None
    assert alert.current.negative_share == 0.6 and alert.baseline.negative_share == 0.2
    assert [p.id for p in alert.top_negative_posts] == ["p0", "p1", "p2", "p3", "p4"]
    assert {t.term for t in alert.terms} >= {"charger", "fire"} and "veltro" not in {t.term for t in alert.terms}
    assert [s.source for s in alert.sources] == ["x", "reviews"] and alert.sources[0].negative_share == 0.6667
    assert alert.dashboard_url == "http://127.0.0.1:6066/dashboard#entity=Veltro%20Motors"
    body = slack_payload(alert)
    assert body["text"].startswith(":rotating_light: [FIRING critical] Veltro Motors")
    assert any("caught fire" in block.get("text", {}).get("text", "") for block in body["blocks"])


def quick_retry(attempts: int) -> AsyncRetrying:
    return AsyncRetrying(stop=stop_after_attempt(attempts), wait=wait_none(), reraise=True)


def test_webhook_retries_then_delivers() -> None:
    with Receiver(status_for=lambda path, n: 500 if n < 3 else 200) as receiver:
        metrics = PipelineMetrics()

        async def go() -> None:
            fanout = Fanout([WebhookNotifier(receiver.url + "/hook", 2.0)], metrics, lambda: quick_retry(4))
            fanout.start()
            fanout.submit(make_alert())
            await fanout.drained()
            await fanout.stop()

        asyncio.run(go())
        assert len(receiver.received("/hook")) == 3
        assert metrics.sink_deliveries.labels(sink="webhook")._value.get() == 1


def test_a_dead_or_slow_sink_never_blocks_and_is_counted() -> None:
    with Receiver(delay_s=3.0) as slow:
        metrics = PipelineMetrics()

        async def go() -> float:
            fanout = Fanout(
                [WebhookNotifier(slow.url + "/slow", 0.5), AlertmanagerNotifier("http://127.0.0.1:1", 0.5)],
                metrics,
                lambda: quick_retry(2),
                queue_size=1,
            )
            fanout.start()
            started = time.monotonic()
            for _ in range(5):
                fanout.submit(make_alert())
            submitted = time.monotonic() - started
            await fanout.drained()
            await fanout.stop()
            return submitted

        assert asyncio.run(go()) < 0.05
        failures = metrics.sink_failures
        assert failures.labels(sink="alertmanager", reason="ClientConnectorError")._value.get() >= 1
        assert failures.labels(sink="webhook", reason="queue_full")._value.get() >= 3
        assert failures.labels(sink="webhook", reason="TimeoutError")._value.get() >= 1


def test_real_alertmanager_accepts_firing_then_resolved(tmp_path: Path) -> None:
    with Receiver() as receiver, LocalAlertmanager(tmp_path / "am", receiver.url + "/am") as am:

        async def send(alert: Alert) -> None:
            notifier = AlertmanagerNotifier(am.url, 5.0)
            await notifier.send(alert)
            await notifier.close()

        asyncio.run(send(make_alert("firing")))
        active = am.alerts()
        assert [a["labels"]["entity"] for a in active] == ["Veltro Motors"]
        assert active[0]["annotations"]["alert_id"] == "abc123" and active[0]["status"]["state"] == "active"
        resolved = make_alert("resolved")
        assert resolved.ends_at is not None and resolved.ends_at < datetime.now(UTC)
        asyncio.run(send(resolved))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(b["status"] == "resolved" for b in receiver.received("/am")):
            time.sleep(0.2)
        statuses = [b["status"] for b in receiver.received("/am")]
        assert statuses[0] == "firing" and statuses[-1] == "resolved"
