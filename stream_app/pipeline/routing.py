"""Which model head scores a record: the one place the rule is stated (docs/model.md repeats it).

- a record from the reviews topic (a `review`) is scored by the `reviews` head;
- a post that names a ticker (a `$CASHTAG` in its text) or mentions a watch-list entity declared
  `domain: finance` is scored by the `finance` head. A post that mentions a brand and a cashtag
  is scored once, by `finance`: a ticker in the text puts the post in the market's conventions
  (a factual report is neutral even when the news is bad), and the brand's own counts still get it;
- every other post is scored by the `social` head.

Routing reads the text and the extracted entities only, never which entities a worker has
admitted, so every worker (and `alerts evaluate`) routes a post the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from stream_app.engine.types import DEFAULT_DOMAIN
from stream_app.pipeline.entities import CASHTAG
from stream_app.pipeline.validate import Kind


def route(kind: Kind, text: str, entities: Iterable[str], finance_entities: Collection[str] = ()) -> str:
    """The domain (`social`, `finance` or `reviews`) whose head scores this record."""
    if kind == "review":
        return "reviews"
    if CASHTAG.search(text) or any(entity.startswith("$") or entity in finance_entities for entity in entities):
        return "finance"
    return DEFAULT_DOMAIN


def entity_domain(entity: str, declared: Mapping[str, str]) -> str:
    """The domain an entity's alerts are judged in (the label floor of that head): its watch-list
    `domain:`, else `finance` for a ticker (`$...`), else `social`."""
    if entity in declared:
        return declared[entity]
    return "finance" if entity.startswith("$") else DEFAULT_DOMAIN
