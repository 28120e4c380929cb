"""The JSON Schema files in schemas/ are exactly what the typed models generate."""

from __future__ import annotations

import json

import orjson
import pytest

import schemas
from stream_app.testing.generate import generate_stream


@pytest.mark.parametrize("name", sorted(schemas.CONTRACTS))
def test_schema_file_matches_model(name):
    committed = schemas.schema_path(name).read_text()
    assert committed == schemas.render_schema(schemas.CONTRACTS[name]), (
        f"{name}.schema.json is stale: run `sentiment-monitor schemas export`"
    )


def test_generated_feed_satisfies_the_input_contracts():
    for kind, record in generate_stream(minutes=2, per_minute=30):
        model = schemas.SocialPost if kind == "post" else schemas.Review
        model.model_validate(orjson.loads(orjson.dumps(record)))


def test_schema_files_are_valid_json_schema_documents():
    for name in schemas.CONTRACTS:
        document = json.loads(schemas.schema_path(name).read_text())
        assert document["type"] == "object" and document["required"]
