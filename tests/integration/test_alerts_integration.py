"""Alerting end to end: real Kafka, a real worker with the real model, real Redis, a real
webhook receiver and Debian's Alertmanager. A scripted spike yields exactly one firing and one
resolved alert, on the alerts topic and at both sinks, even with a kill -9 mid-spike."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from stream_app.testing.generate import SpikeScript, generate_stream
from stream_app.wiring import create_topics
from tests.support.receivers import LocalAlertmanager, Receiver
from tests.support.stack import settings_from
from tests.support.streamkit import drain, produce, wait_for

pytestmark = pytest.mark.integration
WATCHLIST = Path(__file__).resolve().parents[2] / "deploy" / "watchlist" / "demo.yaml"
# 6 posts a minute over four brands: Veltro Motors gets about 7 per 5 minutes at baseline and about
# 20 per 5 minutes in the spike, below the old fixed minimum of 25. Minutes join the baseline when
# they leave the detector's longest (60-minute) window, and a baseline needs 150 of them:
# hence 320 minutes before the spike.
PER_MINUTE = 6
SPIKE = SpikeScript(entity="Veltro Motors", start_minute=320, minutes=20, share=0.9)


def feed(settings, records) -> None:  # type: ignore[no-untyped-def]
    posts = [orjson.dumps(r) for k, r in records if k == "post"]
    reviews = [orjson.dumps(r) for k, r in records if k == "review"]
    produce(settings.kafka_bootstrap, settings.topic_posts, posts)
    produce(settings.kafka_bootstrap, settings.topic_reviews, reviews)


def test_spike_fires_once_and_resolves_once_through_a_crash(stack_env, worker_factory, tmp_path):
    with Receiver() as receiver, LocalAlertmanager(tmp_path / "am", receiver.url + "/am") as am:
        alert_env = {
            "SM_WATCHLIST": str(WATCHLIST),
            "SM_ALERT_TICK_S": "0.5",
            "SM_ALERT_SETTLE_S": "0",
            "SM_ALERT_LEADER_TTL_S": "3",
            "SM_ALERT_WEBHOOK_URL": receiver.url + "/slack",
            "SM_ALERTMANAGER_URL": am.url,
        }
        settings = settings_from({**stack_env, **alert_env})
        create_topics(settings)
        # 400 minutes of event time ending now: 320 of baseline, a 20-minute spike, 60 calm.
        records = list(generate_stream(minutes=400, per_minute=PER_MINUTE, seed=5, spike=SPIKE))
        split = next(i for i, (_, r) in enumerate(records) if r["id"].endswith(f"-{332 * PER_MINUTE + 1}"))

        first = worker_factory(**alert_env)
        first.wait_ready()
        feed(settings, records[:split])  # up to minute 332: the spike is under way
        alerts: list[dict] = []

        def alerts_seen(status: str) -> bool:
            alerts[:] = drain(settings.kafka_bootstrap, settings.topic_alerts, 0, timeout=1, settle=0)
            return any(a["status"] == status for a in alerts)

        wait_for(lambda: alerts_seen("firing"), 180, "the firing alert", first.log_tail)
        wait_for(lambda: len(receiver.received("/slack")) >= 1, 30, "the webhook")
        first.kill9()  # mid-spike, with the alert out

        second = worker_factory(**alert_env)
        third = worker_factory(**alert_env)  # a rebalance: two workers share the partitions,
        second.wait_ready()  # both tick the detector, only the lease holder evaluates
        third.wait_ready()
        feed(settings, records[split:])
        wait_for(lambda: alerts_seen("resolved"), 240, "the resolved alert", second.log_tail)
        time.sleep(5)  # room for any duplicate to show up
        alerts_seen("resolved")

        firing = [a for a in alerts if a["status"] == "firing"]
        resolved = [a for a in alerts if a["status"] == "resolved"]
        assert len(firing) == 1 and len(resolved) == 1, [(a["status"], a["alert_id"]) for a in alerts]
        alert = firing[0]
        assert alert["entity"] == "Veltro Motors" and resolved[0]["alert_id"] == alert["alert_id"]
        spike_start = records[0][1]["created_at"]
        assert alert["current"]["negative_share"] >= 2 * alert["baseline"]["negative_share"]
        assert alert["statistic"]["cusum_llr"] >= alert["statistic"]["threshold"] >= 4.0
        # The confirmation window grew until it held enough posts: below 25 per 5 minutes.
        assert alert["current"]["volume"] * 5 / alert["statistic"]["window_min"] < 25
        assert alert["statistic"]["window_reason"]
        assert alert["top_negative_posts"] and all("snippet" in p for p in alert["top_negative_posts"])
        assert alert["sources"] and alert["dashboard_url"].endswith("#entity=Veltro%20Motors")
        assert spike_start < alert["starts_at"] <= alert["evaluated_at"]
        assert resolved[0]["ends_at"] is not None

        slack = receiver.received("/slack")
        assert [b["text"].split("]")[0] for b in slack] == [
            f":rotating_light: [FIRING {alert['severity']}",
            f":white_check_mark: [RESOLVED {alert['severity']}",
        ]
        wait_for(
            lambda: [b["status"] for b in receiver.received("/am")][-1:] == ["resolved"], 30, "Alertmanager's resolve"
        )
        notified = receiver.received("/am")
        assert notified[0]["status"] == "firing"
        assert notified[0]["alerts"][0]["labels"]["entity"] == "Veltro Motors"
        assert notified[0]["alerts"][0]["annotations"]["alert_id"] == alert["alert_id"]
        assert not [a for a in am.alerts() if a["status"]["state"] == "active"]
