"""/openapi.json describes every route, and the handlers' real answers fit its response models."""

from __future__ import annotations

import time
from types import SimpleNamespace

import schemathesis

from stream_app.pipeline.counts import Counts
from stream_app.testing.fakes import MinuteStore
from stream_app.web import api
from stream_app.web import responses as m
from stream_app.web.openapi import OPERATIONS, build_spec
from stream_app.web.routes import ROUTES, Site


def test_every_route_is_described_and_the_document_loads() -> None:
    undescribed = [route.name for route in ROUTES if route.name not in OPERATIONS]
    assert undescribed == [], "describe these routes in stream_app/web/openapi.py OPERATIONS"
    spec = build_spec(ROUTES, "1.2.3", token=True)
    assert spec["openapi"].startswith("3.") and spec["info"]["version"] == "1.2.3"
    assert set(spec["paths"]) == {route.path for route in ROUTES}
    for model in ("EntityWindow", "UnknownEntity", "TopEntities", "Overview", "Alerts", "Index", "Alert"):
        assert model in spec["components"]["schemas"], model
    entity = spec["paths"]["/entities/{name}"]["get"]
    assert {p["name"] for p in entity["parameters"]} == {"name", "window", "source"}
    assert set(entity["responses"]) == {"200", "400", "404"}
    assert spec["security"] == [{"bearer": []}]
    operations = [result.ok() for result in schemathesis.openapi.from_dict(spec).get_all_operations()]
    assert len(operations) == len(ROUTES)


async def test_handler_answers_validate_against_the_response_models() -> None:
    store = MinuteStore({"ent:Veltro Motors": Counts.of(3, 1, 0, -2.0), "ent:Nimbus Air": Counts.of(0, 5, 5, 3.0)})
    site = Site(store, None, ["Veltro Motors"], lambda: True, lambda: b"", dependencies=lambda: {"redis": True})
    by_route = {route.name: route for route in ROUTES}
    cases = [
        ("entities", {}, {}, m.EntityList),
        ("entity", {"window": "1h"}, {"name": "veltro motors"}, m.EntityWindow),
        ("entity", {}, {"name": "Veltro Moters"}, m.UnknownEntity),
        ("entity", {"window": "0m"}, {"name": "x"}, m.ErrorBody),
        ("series", {"since": str(time.time() - 600)}, {"name": "Nimbus Air"}, m.EntitySeries),
        ("top", {"by": "negative_share"}, {}, m.TopEntities),
        ("overview", {"minutes": "5"}, {}, m.Overview),
        ("alerts", {}, {}, m.Alerts),
        ("healthz", {}, {}, m.Health),
        ("readyz", {}, {}, m.Readiness),
        ("index", {}, {}, m.Index),
    ]
    for name, query, path, model in cases:
        status, body = await by_route[name].handler(site, query, **path)
        model.model_validate(body)
        declared = OPERATIONS[name].responses[status][1]
        assert declared is model, (name, status)


async def test_alerts_validate_with_real_alert_payloads() -> None:
    from tests.unit.test_notifiers import make_alert

    alert = make_alert()
    reader = SimpleNamespace(active=_returns([alert]), recent=_returns([alert]))
    status, body = await api.get_alerts(reader, {})  # type: ignore[arg-type]
    assert status == 200 and len(m.Alerts.model_validate(body).active) == 1


def _returns(value: object):  # type: ignore[no-untyped-def]
    async def call() -> object:
        return value

    return call
