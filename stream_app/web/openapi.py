"""The OpenAPI 3.1 description of the route table, built from the pydantic response models.

Each route in `routes.ROUTES` is described here by name (`OPERATIONS`); a route without a
description still appears, with its path parameters and an untyped 200, so the document always
lists every endpoint (`tests/unit/test_openapi.py` asserts each one is described).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from stream_app.pipeline.windows import LEADERBOARD_WINDOWS_MIN
from stream_app.web import responses as m

LEADERBOARD_WINDOWS = [f"{w}m" if w < 60 else f"{w // 60}h" for w in LEADERBOARD_WINDOWS_MIN]

JSON, TEXT, HTML = "application/json", "text/plain", "text/html"


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: Mapping[int, tuple[str, type[BaseModel] | str]]
    query: tuple[Param, ...] = ()
    tag: str = "entities"
    body: type[BaseModel] | None = None  # a JSON request body (POST)


class RouteLike(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def name(self) -> str: ...


# What `parse_window` accepts: a positive length in m, h or d, at most 7 days (leading zeros aside).
WINDOW_PATTERN = r"^(?:[1-9][0-9]{0,3}m|(?:[1-9][0-9]?|1[0-5][0-9]|16[0-8])h|[1-7]d)$"


def _window(default: str) -> Param:
    schema = {"type": "string", "pattern": WINDOW_PATTERN}
    return Param("window", f"Window length (default {default}), at most 7 days: 1m, 5m, 1h, 24h, 7d", schema)


SOURCE = Param("source", "Only this source (platform), e.g. x, reddit, reviews")
BAD = (400, ("A bad parameter", m.ErrorBody))
UNKNOWN = (404, ("No such entity; the closest names are suggested", m.UnknownEntity))
OPERATIONS: dict[str, Operation] = {
    "index": Operation("The service, its version and links", {200: ("Index", m.Index)}, tag="meta"),
    "openapi": Operation("This document", {200: ("OpenAPI 3.1 description", JSON)}, tag="meta"),
    "metrics": Operation("Prometheus metrics", {200: ("Prometheus text exposition", TEXT)}, tag="meta"),
    "entities": Operation(
        "Entities with stored counts, a page at a time in name order",
        dict([(200, ("Entity names", m.EntityList)), BAD]),
        (
            Param("limit", "Page size (default 100)", {"type": "integer", "minimum": 1, "maximum": 1000}),
            Param("after", "The last name of the previous page (its `next`)"),
        ),
    ),
    "admin_model": Operation(
        "Swap a worker's model live (needs SM_WEB_TOKEN); the old model serves until the new one is warm",
        {
            200: ("Swapped", m.ModelSwapAnswer),
            400: ("Not a model directory request", m.ErrorBody),
            403: ("Swaps over HTTP are off (no SM_WEB_TOKEN)", m.ErrorBody),
            404: ("This process cannot swap models", m.ErrorBody),
            409: ("Another swap is under way", m.ModelSwapAnswer),
            422: ("The model did not load; the old one still serves", m.ModelSwapAnswer),
        },
        tag="admin",
        body=m.ModelSwapRequest,
    ),
    "entity": Operation(
        "An entity's figures over a window. The name resolves case-insensitively and through watch-list aliases",
        dict([(200, ("Window figures", m.EntityWindow)), BAD, UNKNOWN]),
        (_window("5m"), SOURCE),
    ),
    "series": Operation(
        "An entity's figures per step since a time",
        dict([(200, ("Series", m.EntitySeries)), BAD, UNKNOWN]),
        (
            Param(
                "since",
                "Start, epoch seconds: in the past and within the 7-day retention, else a 400",
                {"type": "number"},
                required=True,
            ),
            _window("1m"),
            SOURCE,
        ),
    ),
    "top": Operation(
        "Top entities by volume or negative share",
        dict([(200, ("Ranking", m.TopEntities)), BAD]),
        (
            Param("by", "Ranking", {"type": "string", "enum": ["volume", "negative_share"]}),
            Param(
                "window",
                "A window the leaderboards keep (default 5m)",
                {"type": "string", "enum": LEADERBOARD_WINDOWS},
            ),
            Param("limit", "How many (default 10)", {"type": "integer", "minimum": 1, "maximum": 100}),
            Param(
                "min_volume",
                "Volume floor over the window (default 10)",
                {"type": "integer", "minimum": 0, "maximum": 10**9},
            ),
        ),
    ),
    "alerts": Operation("Firing and recent alerts", {200: ("Alerts", m.Alerts)}, tag="alerts"),
    "overview": Operation(
        "The live page's data: watch-list figures and per-minute series",
        dict([(200, ("Overview", m.Overview)), BAD]),
        (
            _window("5m"),
            Param("minutes", "Series length (default 60)", {"type": "integer", "minimum": 5, "maximum": 1440}),
        ),
    ),
    "dashboard": Operation("The live brand page", {200: ("HTML page", HTML)}, tag="pages"),
    "dashboard_asset": Operation(
        "The live page's static files", {200: ("A static file", TEXT), 404: ("No such file", TEXT)}, tag="pages"
    ),
    "healthz": Operation("Liveness", {200: ("Alive", m.Health)}, tag="meta"),
    "readyz": Operation(
        "Readiness: a worker's model loaded and Redis and Kafka reachable; the API process's Redis reachable",
        {200: ("Ready", m.Readiness), 503: ("Not ready", m.Readiness)},
        tag="meta",
    ),
}


def _models() -> list[type[BaseModel]]:
    found = {model for op in OPERATIONS.values() for _, model in op.responses.values() if isinstance(model, type)}
    found |= {op.body for op in OPERATIONS.values() if op.body is not None}
    return sorted(found, key=lambda model: model.__name__)


def _content(body: type[BaseModel] | str) -> dict[str, Any]:
    if isinstance(body, str):
        schema = {"type": "object"} if body == JSON else {"type": "string"}
        return {body: {"schema": schema}}
    return {JSON: {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}


def _operation(route: RouteLike) -> dict[str, Any]:
    op = OPERATIONS.get(route.name)
    path_params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for n in re.findall(r"{(\w+)}", route.path)
    ]
    if op is None:
        return {"operationId": route.name, "parameters": path_params, "responses": {"200": {"description": "OK"}}}
    query = [
        {"name": p.name, "in": "query", "required": p.required, "description": p.description, "schema": dict(p.schema)}
        for p in op.query
    ]
    responses = {
        str(code): {"description": text, "content": _content(body)} for code, (text, body) in op.responses.items()
    }
    described: dict[str, Any] = {
        "operationId": route.name,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": path_params + query,
        "responses": responses,
    }
    if op.body is not None:
        described["requestBody"] = {"required": True, "content": _content(op.body)}
    return described


def build_spec(routes: Iterable[RouteLike], version: str, token: bool = False) -> dict[str, Any]:
    """The whole document: one operation per route (`GET` unless the route says otherwise)."""
    _, defs = models_json_schema(
        [(model, "serialization") for model in _models()], ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        method = str(getattr(route, "method", "GET")).lower()
        paths.setdefault(route.path, {})[method] = _operation(route)
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "sentiment-monitor", "version": version, "description": "The service's HTTP API"},
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {})},
    }
    if token:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        spec["security"] = [{"bearer": []}]
    return spec
