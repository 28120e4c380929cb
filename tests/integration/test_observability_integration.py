"""A running worker, fed a stream with a spike and some bad records, watched by the real tools:
Debian's Prometheus scrapes it (every dashboard query and the recording rules must return
data), and Debian's Chromium renders the live page with the alert and its sample posts."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from stream_app.testing.generate import SpikeScript, generate_stream
from stream_app.testing.kafka_local import free_port
from stream_app.wiring import create_topics
from tests.support.prom_local import LocalPrometheus, dashboard_queries
from tests.support.stack import REPO, settings_from
from tests.support.streamkit import drain, http_get, produce, wait_for

pytestmark = pytest.mark.integration
WATCHLIST = REPO / "deploy" / "watchlist" / "demo.yaml"
ARTIFACTS = REPO / "test-artifacts"
TOKEN = "t0ken-for-the-test"


def test_prometheus_and_the_live_page_see_a_running_worker(stack_env, worker_factory, api_factory, tmp_path):
    dead_port = free_port()  # nothing listens: the webhook sink fails, and must not stall anything
    env = {
        "SM_WATCHLIST": str(WATCHLIST),
        "SM_ALERT_TICK_S": "0.5",
        "SM_ALERT_SETTLE_S": "0",
        "SM_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{dead_port}/hook",
        "SM_ALERT_SINK_ATTEMPTS": "2",
        "SM_LAG_INTERVAL_S": "0.5",
        "SM_WEB_TOKEN": TOKEN,  # exposed beyond loopback, a worker wants a token: Prometheus and the page send it
    }
    settings = settings_from({**stack_env, **env})
    create_topics(settings)
    worker = worker_factory(**env)
    worker.wait_ready()
    port = worker.env["SM_WEB_PORT"]
    api = api_factory(**env)  # the page and the queries: the API process, apart from the worker
    api.wait_ready()

    base = api.url
    assert [http_get(f"{base}{path}")[0] for path in ("/metrics", "/overview", "/alerts")] == [401, 401, 401]
    assert [http_get(f"{base}{path}")[0] for path in ("/healthz", "/readyz", "/dashboard")] == [200, 200, 200]
    assert http_get(f"{worker.url}/metrics")[0] == 401 and http_get(f"{worker.url}/metrics", TOKEN)[0] == 200
    assert http_get(f"{worker.url}/overview", TOKEN)[0] == 404  # a worker serves no queries

    with LocalPrometheus(tmp_path / "prometheus", [f"127.0.0.1:{port}"], bearer_token=TOKEN) as prometheus:
        # Event time ends now, mid-spike, so the alert is still firing while we look.
        spike = SpikeScript(entity="Veltro Motors", start_minute=70, minutes=30, share=0.9)
        records = list(generate_stream(minutes=78, per_minute=80, seed=9, spike=spike))  # seconds of backlog
        produce(settings.kafka_bootstrap, settings.topic_posts, [orjson.dumps(r) for k, r in records if k == "post"])
        produce(
            settings.kafka_bootstrap, settings.topic_reviews, [orjson.dumps(r) for k, r in records if k == "review"]
        )
        produce(settings.kafka_bootstrap, settings.topic_posts, [b"{not json", b'{"id": "x1"}', b"\xff\xfe"])

        def firing() -> bool:
            alerts = drain(settings.kafka_bootstrap, settings.topic_alerts, 0, timeout=1, settle=0)
            return any(a["status"] == "firing" for a in alerts)

        wait_for(firing, 180, "the firing alert")
        time.sleep(12)  # a dozen scrapes after the alert

        # --- the live page, in headless Chromium ---
        from playwright.sync_api import sync_playwright

        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/dashboard#token={TOKEN}&entity=Veltro%20Motors")
            page.wait_for_selector('.alert[data-entity="Veltro Motors"] .post', timeout=30_000)
            page.wait_for_selector('body[data-loaded="true"] .entity-card canvas', timeout=30_000)
            cards = page.eval_on_selector_all(".entity-card", "els => els.map(e => e.dataset.entity)")
            assert sorted(cards) == ["Nimbus Air", "Orbital Coffee", "Quanta Bank", "Veltro Motors"]
            assert TOKEN not in page.url and page.url.endswith("#entity=Veltro%20Motors")
            veltro = page.locator('.entity-card[data-entity="Veltro Motors"]')
            assert "alerting" in (veltro.get_attribute("class") or "")
            share = float(veltro.locator(".negative-share b").inner_text().split()[0])
            assert share > 40.0  # percent: the spike is on the page
            posts = page.locator('.alert[data-entity="Veltro Motors"] .post').all_inner_texts()
            assert posts and all(p.strip() for p in posts)
            texts = {r["text"] for _, r in records}
            assert all(any(t.startswith(p.rstrip("…")) for t in texts) for p in posts)  # real posts
            page.screenshot(path=str(ARTIFACTS / "live-dashboard.png"), full_page=True)
            browser.close()

        # --- Prometheus: every dashboard query, and the recording rules, have data ---
        empty = [title for title, expr in dashboard_queries() if not prometheus.query_range(expr, 60)]
        assert not empty, f"dashboard queries without data: {empty}"
        for rule in ("sm:messages_in:rate1m", "sm:entity_negative_share:5m", "sm:consumer_lag:sum"):
            assert prometheus.query_range(rule, 60), rule
        shares = prometheus.query_range('sm_entity_negative_share{entity="Veltro Motors", window="5m"}', 30)
        assert float(shares[0]["values"][-1][1]) > 0.4
        reasons = {r["metric"]["reason"] for r in prometheus.query_range("sm_dead_letters_total", 30)}
        assert {"malformed_json", "missing_field", "bad_utf8"} <= reasons
        failures = prometheus.query_range('sm_alert_sink_failures_total{sink="webhook"}', 30)
        assert failures and float(failures[0]["values"][-1][1]) >= 1
        up = [float(v) for _, v in prometheus.query_range("up", 300)[0]["values"]]
        assert sum(up) >= 0.9 * len(up), f"scrapes failed (a 1 s scrape timeout): {up}"
        lag = [float(v) for _, v in prometheus.query_range("sum(sm_consumer_lag)", 300)[0]["values"]]
        assert max(lag) > 0 and lag[-1] == 0  # behind while the feed arrived, caught up since
        info = prometheus.query_range("sm_model_info", 30)[0]["metric"]
        assert info["precision"] and info["provider"]

    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    assert worker.alive()
    assert Path(ARTIFACTS / "live-dashboard.png").stat().st_size > 10_000
