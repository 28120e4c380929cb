"""Alert sinks beyond the Kafka topic: a Slack-compatible webhook and Alertmanager's v2 API.

`Fanout.submit` never waits: each sink has a bounded queue and its own task, retries with
exponential backoff (an injectable tenacity policy), and counts what it finally fails to
deliver. A slow or dead sink therefore costs the stream nothing but a metric and a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from schemas.models import Alert
from stream_app.errors import SentimentMonitorError
from stream_app.pipeline.ports import Sink

log = logging.getLogger(__name__)


class SinkError(SentimentMonitorError):
    """A sink answered with an error status."""


class Notifier(Protocol):
    """The notifier seam: deliver one alert or raise."""

    name: str

    async def send(self, alert: Alert) -> None: ...


class SinkObserver(Protocol):
    def sink_delivered(self, sink: str) -> None: ...

    def sink_failed(self, sink: str, reason: str) -> None: ...


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack incoming-webhook JSON: `text` for notifications, `blocks` for the message body."""
    icon = ":rotating_light:" if alert.status == "firing" else ":white_check_mark:"
    head = f"{icon} [{alert.status.upper()} {alert.severity}] {alert.summary}"
    fields = [
        f"*Window:* {alert.window_s // 60} min",
        f"*Negative:* {alert.current.negative_share:.0%} vs {alert.baseline.negative_share:.0%}",
        f"*Volume:* {alert.current.volume:g} vs {alert.baseline.volume:g}",
        f"*CUSUM:* {alert.statistic.cusum_llr:.1f} (≥ {alert.statistic.threshold:g})",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if alert.top_negative_posts:
        quotes = "\n".join(f"> {p.snippet}" for p in alert.top_negative_posts[:3])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quotes}})
    if alert.terms:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "Terms: " + ", ".join(t.term for t in alert.terms)}],
            }
        )
    if alert.dashboard_url:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{alert.dashboard_url}|Dashboard>"}]}
        )
    return {"text": head, "blocks": blocks}


def alertmanager_payload(alert: Alert, now: datetime, resend_s: float) -> list[dict[str, Any]]:
    """One v2 `postableAlert`. A firing alert's `endsAt` is a few resend intervals ahead (as
    Prometheus does), so Alertmanager resolves it by itself if this service goes away; a
    resolved one carries its end, which is what makes Alertmanager send the resolution."""
    ends = alert.ends_at if alert.status == "resolved" and alert.ends_at else now + timedelta(seconds=4 * resend_s)
    if alert.status == "resolved":
        ends = min(ends, now)
    return [
        {
            "labels": {
                "alertname": "NegativeSentimentSpike",
                "service": "sentiment-monitor",
                "entity": alert.entity,
                "severity": alert.severity,
            },
            "annotations": {
                "summary": alert.summary,
                "alert_id": alert.alert_id,
                "negative_share": f"{alert.current.negative_share:.4f}",
                "baseline_share": f"{alert.baseline.negative_share:.4f}",
                "dashboard": alert.dashboard_url or "",
            },
            "startsAt": alert.starts_at.isoformat(),
            "endsAt": ends.isoformat(),
            "generatorURL": alert.dashboard_url or "",
        }
    ]


class _HttpNotifier:
    name = "http"

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, body: Any) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        async with self._session.post(self.url, json=body) as response:
            if response.status >= 300:
                raise SinkError(f"{self.name}: HTTP {response.status}: {(await response.text())[:200]}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class WebhookNotifier(_HttpNotifier):
    name = "webhook"

    async def send(self, alert: Alert) -> None:
        await self._post(slack_payload(alert))


class AlertmanagerNotifier(_HttpNotifier):
    name = "alertmanager"

    def __init__(self, base_url: str, timeout_s: float, resend_s: float = 60.0) -> None:
        super().__init__(base_url.rstrip("/") + "/api/v2/alerts", timeout_s)
        self.resend_s = resend_s

    async def send(self, alert: Alert) -> None:
        await self._post(alertmanager_payload(alert, datetime.now(UTC), self.resend_s))


def default_retrying(attempts: int = 4) -> AsyncRetrying:
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=8),
        retry=retry_if_exception_type((aiohttp.ClientError, asyncio.TimeoutError, SinkError, OSError)),
        reraise=True,
    )


class Fanout:
    """The HTTP alert sinks (webhook, Alertmanager) behind one `Sink[Alert]`. `write` only queues:
    the alerts topic is the record of truth and is written first, awaited; these copies are
    delivered in the background with retries, and a sink that is down or slow never holds up
    the detector (a full queue drops the copy and counts it)."""

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        observer: SinkObserver,
        retrying: Callable[[], AsyncRetrying] = default_retrying,
        queue_size: int = 256,
        flush_timeout_s: float = 10.0,
    ) -> None:
        self.notifiers = list(notifiers)
        self.observer = observer
        self.retrying = retrying
        self.flush_timeout_s = flush_timeout_s
        self.queues: dict[str, asyncio.Queue[Alert]] = {n.name: asyncio.Queue(queue_size) for n in self.notifiers}
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if not self.tasks:
            self.tasks = [asyncio.create_task(self._drain(n)) for n in self.notifiers]

    async def write(self, batch: Sequence[Alert]) -> None:
        for alert in batch:
            self.submit(alert)

    def only(self, name: str) -> Sink[Alert]:
        """The same sink, for one notifier (Alertmanager's resends of firing alerts)."""
        return _OneNotifier(self, name)

    def submit(self, alert: Alert, only: str | None = None) -> None:
        for notifier in self.notifiers:
            if only is not None and notifier.name != only:
                continue
            try:
                self.queues[notifier.name].put_nowait(alert)
            except asyncio.QueueFull:
                self.observer.sink_failed(notifier.name, "queue_full")
                log.error("alert sink %s is backed up; dropped %s %s", notifier.name, alert.alert_id, alert.status)

    async def _drain(self, notifier: Notifier) -> None:
        queue = self.queues[notifier.name]
        while True:
            alert = await queue.get()
            try:
                async for attempt in self.retrying():
                    with attempt:
                        await notifier.send(alert)
                self.observer.sink_delivered(notifier.name)
            except Exception as exc:
                self.observer.sink_failed(notifier.name, type(exc).__name__)
                log.error("alert sink %s failed for %s %s: %s", notifier.name, alert.alert_id, alert.status, exc)
            finally:
                queue.task_done()

    async def drained(self) -> None:
        await asyncio.gather(*(q.join() for q in self.queues.values()))

    async def flush(self) -> None:
        """Wait (bounded) until every queued copy was delivered or given up on."""
        if not self.tasks:
            return
        try:
            await asyncio.wait_for(self.drained(), self.flush_timeout_s)
        except TimeoutError:
            log.warning("alert sinks still had copies queued after %.0f s", self.flush_timeout_s)

    async def stop(self) -> None:
        await self.flush()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for notifier in self.notifiers:
            close = getattr(notifier, "close", None)
            if close is not None:
                await close()


class _OneNotifier:
    def __init__(self, fanout: Fanout, name: str) -> None:
        self.fanout, self.name = fanout, name

    async def start(self) -> None:
        return None

    async def write(self, batch: Sequence[Alert]) -> None:
        for alert in batch:
            self.fanout.submit(alert, only=self.name)

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        return None
