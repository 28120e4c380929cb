"""The read-only JSON API, as plain async functions of (store, query parameters).

Framework-free so the Faust edge stays thin: each returns (status, body), and a bad
parameter is a 400 with a message, never a traceback.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from schemas.models import Alert
from stream_app.errors import BadQuery
from stream_app.pipeline.ports import AggregateStore
from stream_app.pipeline.queries import entity_overview, entity_series, entity_window, find_entity, top_entities
from stream_app.pipeline.windows import LEADERBOARD_WINDOWS_MIN, TOP_MIN_VOLUME, parse_window

Response = tuple[int, Any]

# Reachable without the token: probes, the index, the API description and the live page's static
# files (they hold no data; the page sends the token with each data request).
OPEN_PATHS = ("/healthz", "/readyz", "/dashboard", "/", "/openapi.json")


def authorized(token: str, path: str, headers: Mapping[str, str]) -> bool:
    """Whether a request may see `path` when the worker has a token (SM_WEB_TOKEN).

    Bearer header only, never a query parameter: URLs end up in proxy and access logs.
    """
    if path in OPEN_PATHS or path.startswith("/dashboard/"):
        return True
    scheme, _, given = headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class AlertReader(Protocol):
    async def active(self) -> Sequence[Alert]: ...

    async def recent(self) -> Sequence[Alert]: ...


def _error(message: str) -> Response:
    return 400, {"error": message}


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return int(raw)


ENTITIES_PAGE = 100


async def get_entities(store: AggregateStore, params: Mapping[str, str]) -> Response:
    """One page of entity names in name order; `next` is the `after` of the following page."""
    try:
        limit = _int(params, "limit", ENTITIES_PAGE, 1, 1000)
    except ValueError as exc:
        return _error(str(exc))
    names = await store.entities(params.get("after") or None, limit)
    return 200, {"entities": names, "next": names[-1] if len(names) == limit else None}


async def _resolve(store: AggregateStore, name: str, aliases: Mapping[str, str] | None) -> str | Response:
    """The stored entity `name` means (case-insensitive, watch-list aliases), else a 404 with the closest names."""
    found = await find_entity(store, name, aliases)
    if found.entity is not None:
        return found.entity
    return 404, {"error": f"unknown entity {name!r}", "suggestions": found.suggestions}


async def get_entity(
    store: AggregateStore, name: str, params: Mapping[str, str], aliases: Mapping[str, str] | None = None
) -> Response:
    try:
        window = params.get("window", "5m")
        parse_window(window)
        entity = await _resolve(store, name, aliases)
        if not isinstance(entity, str):
            return entity
        return 200, await entity_window(store, entity, window, params.get("source") or None)
    except (ValueError, BadQuery) as exc:
        return _error(str(exc))


async def get_series(
    store: AggregateStore, name: str, params: Mapping[str, str], aliases: Mapping[str, str] | None = None
) -> Response:
    try:
        since_raw = params.get("since")
        if since_raw is None:
            return _error("since is required: epoch seconds")
        try:
            since = float(since_raw)
        except ValueError:
            return _error("since must be epoch seconds")
        window = params.get("window", "1m")
        parse_window(window)
        entity = await _resolve(store, name, aliases)
        if not isinstance(entity, str):
            return entity
        return 200, await entity_series(store, entity, window, since, params.get("source") or None)
    except (ValueError, BadQuery) as exc:
        return _error(str(exc))


async def get_overview(store: AggregateStore, names: Sequence[str], params: Mapping[str, str]) -> Response:
    """Everything the live page draws in one call: per entity, the window's figures and a
    per-minute series. Entities: the watch-list, else the busiest ones."""
    try:
        window = params.get("window", "5m")
        minutes = _int(params, "minutes", 60, 5, 24 * 60)
        if not names:  # the busiest entities, from the window's leaderboard (or the day's)
            ranked = window if parse_window(window) in LEADERBOARD_WINDOWS_MIN else "24h"
            names = [row["entity"] for row in await top_entities(store, "volume", ranked, 8, min_volume=1)]
        now = time.time()
        rows = [await entity_overview(store, name, window, minutes, now) for name in names]
        return 200, {"window": window, "minutes": minutes, "now": now, "entities": rows}
    except (ValueError, BadQuery) as exc:
        return _error(str(exc))


async def get_top(store: AggregateStore, params: Mapping[str, str]) -> Response:
    try:
        limit = _int(params, "limit", 10, 1, 100)
        min_volume = _int(params, "min_volume", TOP_MIN_VOLUME, 0, 10**9)
        by, window = params.get("by", "volume"), params.get("window", "5m")
        rows = await top_entities(store, by, window, limit, min_volume)
        note = f"entities with fewer than {min_volume} posts in the window are left out (min_volume)"
        return 200, {"by": by, "window": window, "min_volume": min_volume, "note": note, "entities": rows}
    except (ValueError, BadQuery) as exc:
        return _error(str(exc))


def get_index(version: str) -> Response:
    """What `/` answers: the service, its version and where to go next."""
    links = {"dashboard": "/dashboard", "openapi": "/openapi.json", "health": "/healthz", "ready": "/readyz"}
    return 200, {"name": "sentiment-monitor", "version": version, "links": links}


async def get_alerts(state: AlertReader | None, params: Mapping[str, str]) -> Response:
    """Firing and recent alerts; empty lists when alerting is off."""
    if state is None:
        return 200, {"active": [], "recent": []}
    active = [a.model_dump(mode="json") for a in await state.active()]
    recent = [a.model_dump(mode="json") for a in await state.recent()]
    return 200, {"active": active, "recent": recent}
