"""Response bodies of the JSON API, as pydantic models: the source of `/openapi.json`.

The handlers in `api.py` build plain dicts (the hot path stays allocation-light); these models
describe them, and `tests/unit/test_openapi.py` checks real answers validate against them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.models import Alert


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class ErrorBody(_Body):
    error: str = Field(description="What was wrong with the request")


class UnknownEntity(ErrorBody):
    suggestions: list[str] = Field(description="The closest known entity names, closest first")


class Figures(_Body):
    negative: int = Field(ge=0)
    neutral: int = Field(ge=0)
    positive: int = Field(ge=0)
    volume: int = Field(ge=0, description="Posts and reviews in the window")
    mean_score: float = Field(ge=-1, le=1, description="Mean of P(positive) - P(negative)")
    negative_share: float = Field(ge=0, le=1)


class EntityWindow(Figures):
    entity: str = Field(description="The stored entity name the request resolved to")
    source: str | None = Field(description="Only this source (platform), or null for all")
    window: str = Field(description="Window length, e.g. 5m, 1h, 24h")
    from_: int = Field(alias="from", description="Window start, epoch seconds (a minute boundary)")
    to: int = Field(description="Window end, epoch seconds, exclusive")


class SeriesPoint(Figures):
    start: int = Field(description="Step start, epoch seconds")


class EntitySeries(_Body):
    entity: str
    source: str | None
    window: str = Field(description="Step length")
    points: list[SeriesPoint]


class EntityList(_Body):
    entities: list[str] = Field(description="One page of entity names, in name order")
    next: str | None = Field(description="The `after` of the next page; null on the last page")


class ModelSwapRequest(_Body):
    model_dir: str = Field(min_length=1, description="A model directory on the worker's file system")


class ModelSwapAnswer(_Body):
    active: dict[str, str] = Field(description="The model that serves now: name, version, provider, ...")
    error: str | None = Field(None, description="Why a swap did not happen (the old model still serves)")


class TopEntities(_Body):
    by: str = Field(description="Ranking: volume or negative_share")
    window: str
    min_volume: int = Field(ge=0, description="Entities with fewer posts in the window are left out")
    note: str = Field(description="The volume floor in words")
    entities: list[EntityWindow]


class OverviewEntity(EntityWindow):
    series: list[SeriesPoint] = Field(description="Per-minute figures")


class Overview(_Body):
    window: str
    minutes: int
    now: float = Field(description="Server time, epoch seconds")
    entities: list[OverviewEntity]


class Alerts(_Body):
    active: list[Alert]
    recent: list[Alert]


class Health(_Body):
    status: str


class Readiness(_Body):
    model_config = ConfigDict(extra="allow")

    ready: bool = Field(description="The model is loaded and every dependency answers")
    model: bool = Field(description="The model is loaded")
    redis: bool | None = Field(None, description="Redis answered the last probe")
    kafka: bool | None = Field(None, description="Kafka accepted a connection at the last probe")


class Index(_Body):
    name: str
    version: str
    links: dict[str, str] = Field(description="Where to go next: the live page, this API's description")
