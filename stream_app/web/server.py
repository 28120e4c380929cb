"""The API process (`sentiment-monitor api`): the queries, alerts and the live page, apart from the workers.

Why a process of its own: reads and stream processing scale differently. A page that polls
every two seconds, or a leaderboard over ten thousand entities, must not take CPU from the
worker that scores the stream, and more API replicas must not mean more consumers. It reads
Redis only; it needs neither Kafka nor the model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import web as aioweb

from stream_app.web import security
from stream_app.web.pages import token_guard
from stream_app.web.routes import Route, Site

log = logging.getLogger(__name__)


def build_app(
    site: Site,
    routes: Sequence[Route],
    web_host: str,
    allowed_hosts: Sequence[str] = (),
    dashboard_url: str | None = None,
    token: str | None = None,
    middlewares: Sequence[Any] = (),
) -> aioweb.Application:
    """An aiohttp application serving `routes` over `site`, hardened like the worker's server."""
    guards = [token_guard(token)] if token else []
    options = security.application_options(web_host, allowed_hosts, dashboard_url, [*guards, *middlewares])
    app = aioweb.Application(**options)
    for route in routes:
        app.router.add_route(route.method, route.path, _view(route, site), name=route.name)
    return app


def _view(route: Route, site: Site) -> Any:
    async def view(request: aioweb.Request) -> aioweb.StreamResponse:
        params = dict(request.match_info)
        if route.method == "POST":
            result = await route.handler(site, request.query, body=await request.read(), **params)
        else:
            result = await route.handler(site, request.query, **params)
        if isinstance(result, tuple):
            return aioweb.json_response(result[1], status=result[0], dumps=_dumps)
        return result

    return view


def _dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


async def serve(app: aioweb.Application, host: str, port: int) -> aioweb.AppRunner:
    """Start serving; the caller keeps the runner and calls `cleanup()` to stop."""
    runner = aioweb.AppRunner(app, access_log=None)
    await runner.setup()
    await aioweb.TCPSite(runner, host, port).start()
    log.info("API on http://%s:%d (page: /dashboard)", host, port)
    return runner
