"""The route tables, framework-free: every page as (path, name, handler, method).

Two processes serve them. The API process (`sentiment-monitor api`, stream_app/web/server.py)
serves `ROUTES`: the queries, alerts, the live page and its own probes and metrics, scaled apart
from the stream. A worker (its Faust web server, stream_app/ingest/app.py) serves
`WORKER_ROUTES`: its metrics, probes and the live model swap. A handler gets the `Site` (what
the pages read), the query parameters and the path's parameters (a POST also gets `body`), and
returns either `(status, JSON body)` or a finished aiohttp response (metrics text, static files).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web as aioweb

from stream_app.pipeline.ports import AggregateStore
from stream_app.web import api
from stream_app.web.pages import metrics_page, static_file

Result = api.Response | aioweb.Response
Handler = Callable[..., Awaitable[Result]]


ModelSwap = Callable[[bytes], Awaitable[tuple[int, dict[str, Any]]]]


@dataclass(frozen=True)
class Site:
    """What the pages read: the aggregate store, the alert state and the process's own state."""

    store: AggregateStore | None
    alert_state: api.AlertReader | None
    watchlist: Sequence[str]
    ready: Callable[[], bool]
    render_metrics: Callable[[], bytes]
    refresh_metrics: Callable[[], Awaitable[None]] | None = None
    # Reachability of the worker's dependencies ({"redis": True, "kafka": False}); /readyz needs all.
    dependencies: Callable[[], Mapping[str, bool]] = dict
    # Folded watch-list names and aliases -> entity (`stream_app.pipeline.lookup.alias_table`).
    aliases: Mapping[str, str] = field(default_factory=dict)
    token: bool = False  # the process asks for a bearer token (SM_WEB_TOKEN); said in /openapi.json
    swap_model: ModelSwap | None = None  # a worker's live model swap (POST /admin/model)
    routes: Sequence[Route] = ()  # the table this process serves (for /openapi.json)


@dataclass(frozen=True)
class Route:
    path: str
    name: str
    handler: Handler
    method: str = "GET"


async def _metrics(site: Site, query: Mapping[str, str]) -> Result:
    return await metrics_page(site.refresh_metrics, site.render_metrics)


def _store(site: Site) -> AggregateStore:
    if site.store is None:
        raise RuntimeError("this process serves no queries")  # a route table bug, not a request's
    return site.store


async def _entities(site: Site, query: Mapping[str, str]) -> Result:
    return await api.get_entities(_store(site), query)


async def _entity(site: Site, query: Mapping[str, str], name: str) -> Result:
    return await api.get_entity(_store(site), name, query, site.aliases)


async def _series(site: Site, query: Mapping[str, str], name: str) -> Result:
    return await api.get_series(_store(site), name, query, site.aliases)


async def _top(site: Site, query: Mapping[str, str]) -> Result:
    return await api.get_top(_store(site), query)


async def _alerts(site: Site, query: Mapping[str, str]) -> Result:
    return await api.get_alerts(site.alert_state, query)


async def _overview(site: Site, query: Mapping[str, str]) -> Result:
    return await api.get_overview(_store(site), site.watchlist, query)


async def _dashboard(site: Site, query: Mapping[str, str]) -> Result:
    return static_file("dashboard.html")


async def _dashboard_asset(site: Site, query: Mapping[str, str], asset: str) -> Result:
    return static_file(asset)


async def _healthz(site: Site, query: Mapping[str, str]) -> Result:
    return 200, {"status": "ok"}


async def _readyz(site: Site, query: Mapping[str, str]) -> Result:
    model = site.ready()
    dependencies = dict(site.dependencies())
    ready = model and all(dependencies.values())
    return (200 if ready else 503), {"ready": ready, "model": model, **dependencies}


async def _index(site: Site, query: Mapping[str, str]) -> Result:
    from stream_app.resources import version

    return api.get_index(version())


async def _openapi(site: Site, query: Mapping[str, str]) -> Result:
    from stream_app.resources import version
    from stream_app.web.openapi import build_spec

    return 200, build_spec(site.routes, version(), token=site.token)


async def _admin_model(site: Site, query: Mapping[str, str], body: bytes = b"") -> Result:
    """POST /admin/model {"model_dir": ...}: swap the model live (the bearer-token guard covers it;
    without SM_WEB_TOKEN the request is refused with 403)."""
    if site.swap_model is None:
        return 404, {"error": "this process cannot swap models"}
    if not site.token:
        return 403, {"error": "model swaps over HTTP need SM_WEB_TOKEN set"}
    return await site.swap_model(body)


ROUTES: tuple[Route, ...] = (
    Route("/metrics", "metrics", _metrics),
    Route("/entities", "entities", _entities),
    Route("/entities/{name}", "entity", _entity),
    Route("/entities/{name}/series", "series", _series),
    Route("/top", "top", _top),
    Route("/alerts", "alerts", _alerts),
    Route("/overview", "overview", _overview),
    Route("/dashboard", "dashboard", _dashboard),
    Route("/dashboard/{asset}", "dashboard_asset", _dashboard_asset),
    Route("/healthz", "healthz", _healthz),
    Route("/readyz", "readyz", _readyz),
    Route("/", "index", _index),
    Route("/openapi.json", "openapi", _openapi),
)
WORKER_ROUTES: tuple[Route, ...] = (
    Route("/metrics", "metrics", _metrics),
    Route("/healthz", "healthz", _healthz),
    Route("/readyz", "readyz", _readyz),
    Route("/admin/model", "admin_model", _admin_model, method="POST"),
    Route("/openapi.json", "openapi", _openapi),
)
