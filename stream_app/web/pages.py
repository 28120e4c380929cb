"""Page handlers that answer with aiohttp responses: the live page's files, /metrics and the token guard."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web as aioweb

from stream_app.web import api as http_api

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).parent / "static"
STATIC = {  # the live page's files: a fixed list, so no path from a request ever reaches the disk
    "dashboard.html": (WEB_DIR / "dashboard.html", "text/html"),
    "dashboard.js": (WEB_DIR / "dashboard.js", "application/javascript"),
    "dashboard.css": (WEB_DIR / "dashboard.css", "text/css"),
    "uPlot.iife.min.js": (WEB_DIR / "vendor" / "uPlot.iife.min.js", "application/javascript"),
    "uPlot.min.css": (WEB_DIR / "vendor" / "uPlot.min.css", "text/css"),
}


def static_file(name: str) -> aioweb.Response:
    if name not in STATIC:
        return aioweb.Response(status=404, text="not found")
    path, content_type = STATIC[name]
    return aioweb.Response(body=path.read_bytes(), content_type=content_type, charset="utf-8")


async def metrics_page(refresh: Callable[[], Awaitable[None]] | None, render: Callable[[], bytes]) -> aioweb.Response:
    """Prometheus text; the scrape-time entity gauges are refreshed from Redis first."""
    if refresh is not None:
        try:
            await refresh()
        except Exception:  # a Redis hiccup must not take the whole scrape down
            log.warning("could not refresh entity gauges", exc_info=True)
    return aioweb.Response(body=render(), content_type="text/plain", charset="utf-8")


def token_guard(token: str) -> Any:
    """aiohttp middleware: 401 unless `http_api.authorized` lets the request through."""

    @aioweb.middleware
    async def guard(request: aioweb.Request, handler: Any) -> Any:
        if http_api.authorized(token, request.path, request.headers):
            return await handler(request)
        return aioweb.json_response(
            {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": 'Bearer realm="sentiment-monitor"'}
        )

    return guard
