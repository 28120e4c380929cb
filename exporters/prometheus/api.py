"""The API process's own Prometheus metrics: request latency by route, on its own registry."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web as aioweb
from prometheus_client import CollectorRegistry, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.request_seconds = Histogram(
            "sm_api_request_seconds",
            "API request latency, by route and status",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def middleware(self) -> Any:
        """aiohttp middleware timing each request under its route's name (bounded labels)."""

        @aioweb.middleware
        async def timed(request: aioweb.Request, handler: Any) -> Any:
            started = time.monotonic()
            response = await handler(request)
            route = request.match_info.route.name or "unmatched"
            self.request_seconds.labels(route=route, status=str(response.status)).observe(time.monotonic() - started)
            return response

        return timed

    def render(self) -> bytes:
        return generate_latest(self.registry)
