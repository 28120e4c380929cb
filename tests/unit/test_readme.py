"""The README's example records are valid records: each topic's JSON block validates against
its contract, and the commands it shows exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from schemas.models import Review, ScoredEvent, SocialPost

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def example(topic: str) -> dict[str, object]:
    """The first ```json block after the paragraph that starts with `topic`."""
    match = re.search(rf"^`{re.escape(topic)}` .*?```json\n(.*?)```", README, re.S | re.M)
    assert match, f"the README shows no example record for {topic}"
    record: dict[str, object] = json.loads(match.group(1))
    return record


@pytest.mark.parametrize(
    ("topic", "model"), [("social-posts", SocialPost), ("reviews", Review), ("scored-events", ScoredEvent)]
)
def test_each_topic_example_validates(topic, model):
    model.model_validate(example(topic))


def test_examples_use_the_default_topic_names():
    from stream_app.settings import Settings

    defaults = Settings.model_fields
    for field in ("topic_posts", "topic_reviews", "topic_scored", "topic_dead_letter", "topic_alerts"):
        assert f"`{defaults[field].default}`" in README


def test_quickstart_commands_exist():
    from typer.main import get_command

    from stream_app.cli import app

    root = get_command(app)
    block = README.split("## Install with pip", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    used = set(re.findall(r"sentiment-monitor ([a-z-]+)", block)) - {"--version"}
    assert used and used <= set(root.commands), used - set(root.commands)  # type: ignore[attr-defined]
