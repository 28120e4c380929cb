"""Event contracts: pydantic models and their generated JSON Schema files."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.models import Alert, DeadLetter, NormalizedEvent, Review, ScoredEvent, SocialPost

SCHEMA_DIR = Path(__file__).parent
CONTRACTS: dict[str, type[BaseModel]] = {
    "social_post": SocialPost,
    "review": Review,
    "normalized_event": NormalizedEvent,
    "scored_event": ScoredEvent,
    "dead_letter": DeadLetter,
    "alert": Alert,
}


def schema_path(name: str) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


def render_schema(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write_schemas() -> list[Path]:
    written = []
    for name, model in CONTRACTS.items():
        schema_path(name).write_text(render_schema(model))
        written.append(schema_path(name))
    return written


__all__ = ["CONTRACTS", "Alert", "DeadLetter", "NormalizedEvent", "Review", "ScoredEvent", "SocialPost"]
