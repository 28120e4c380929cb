"""The live API process against its own /openapi.json (schemathesis), its JSON index at `/`, and a
worker's own description (metrics, probes, the model swap)."""

from __future__ import annotations

import json
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from stream_app.resources import demo_watchlist

EXAMPLES = 6  # per operation: enough to hit each documented status, fast enough for CI
# `since` must lie in the last 7 days, which a schema cannot say: a schema-valid `since` may get
# its documented 400, so the series operation skips the "valid data is accepted" check.
TIME_DEPENDENT = {"/entities/{name}/series"}


@pytest.mark.integration
def test_the_api_answers_as_its_openapi_description_says(worker_factory, api_factory) -> None:  # type: ignore[no-untyped-def]
    worker = worker_factory(SM_WATCHLIST=str(demo_watchlist()))
    api = api_factory(SM_WATCHLIST=str(demo_watchlist()))
    worker.wait_ready()
    api.wait_ready()
    base = api.url
    with urllib.request.urlopen(f"{base}/", timeout=10) as response:
        index = json.loads(response.read())
    assert index["name"] == "sentiment-monitor" and index["links"]["openapi"] == "/openapi.json"

    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/", "/entities", "/entities/{name}", "/top", "/readyz"}
    for operation in operations:
        conformance_test(operation, base)()
    assert api.alive(), api.log_tail()

    worker_schema = schemathesis.openapi.from_url(f"{worker.url}/openapi.json")
    worker_ops = [result.ok() for result in worker_schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in worker_ops} >= {("POST", "/admin/model"), ("GET", "/metrics")}
    for operation in worker_ops:
        conformance_test(operation, worker.url)()  # no SM_WEB_TOKEN here: a swap is a documented 403
    assert worker.alive(), worker.log_tail()


def conformance_test(operation, base: str):  # type: ignore[no-untyped-def]
    """A few generated requests for one operation, each checked against the description."""
    excluded = [positive_data_acceptance] if operation.path in TIME_DEPENDENT else []

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def conforms(case) -> None:  # type: ignore[no-untyped-def]
        case.call_and_validate(base_url=base, excluded_checks=excluded)

    return conforms
