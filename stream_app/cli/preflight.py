"""Start-up checks that turn a bad setting or an absent dependency into one `SentimentMonitorError`
naming the setting, before anything slow (the model) loads. Used by the CLI and `check`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from stream_app.engine.null import is_null_model
from stream_app.errors import DependencyUnavailable, ModelError
from stream_app.pipeline.entities import WatchList
from stream_app.settings import Settings

MODEL_FILES = ("model.fp32.onnx", "model.fp16.onnx", "model.int8.onnx")
MODEL_HINT = "point SM_MODEL_DIR at a model directory (labels.json, tokenizer.json, model.*.onnx) or unset it"


def check_model_dir(path: Path, source: str = "SM_MODEL_DIR") -> str:
    """A one-line description of a usable model directory, or `ModelError` naming SM_MODEL_DIR
    (or `source`, e.g. a command's --model option)."""
    setting = f"{source}={path}"
    if not path.is_dir():
        raise ModelError("the model directory does not exist", setting=setting, hint=MODEL_HINT)
    missing = [n for n in ("labels.json", "tokenizer.json") if not (path / n).is_file()]
    if missing:
        raise ModelError(f"the model directory has no {' or '.join(missing)}", setting=setting, hint=MODEL_HINT)
    try:
        labels = json.loads((path / "labels.json").read_text())["labels"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError("labels.json has no `labels` list", setting=setting, hint=MODEL_HINT) from exc
    files = [n for n in MODEL_FILES if (path / n).is_file()]
    if not files:
        none = f"the model directory holds none of {', '.join(MODEL_FILES)}"
        raise ModelError(none, setting=setting, hint=MODEL_HINT)
    return f"{path}: {', '.join(files)}; labels {', '.join(map(str, labels))}"


def load_watchlist(settings: Settings) -> WatchList:
    """The watch-list SM_WATCHLIST names (empty when unset); `WatchListError` names the file."""
    return WatchList.load(settings.watchlist) if settings.watchlist else WatchList([])


def validate_local(settings: Settings, model: bool = True) -> None:
    """Everything checkable without the network: the watch-list first (cheap), then the model directory."""
    load_watchlist(settings)
    if model and not is_null_model(settings.model_dir):  # `null:` is the bench-only null model
        check_model_dir(settings.model_dir)


async def redis_reachable(settings: Settings, timeout_s: float = 3.0) -> str:
    """Ping Redis once, within `timeout_s`; `DependencyUnavailable` naming SM_REDIS_URL otherwise."""
    from exporters.redis.connection import connect
    from stream_app.ingest.health import redis_address, redis_ok

    url = settings.redis_url.get_secret_value()
    client = connect(url)
    try:
        if await redis_ok(client, timeout_s):
            return f"PING answered at {redis_address(url)}"
    finally:
        await client.aclose()
    raise DependencyUnavailable(
        f"Redis at {redis_address(url)} did not answer within {timeout_s:.0f} s",
        setting="SM_REDIS_URL",
        hint="start Redis or point SM_REDIS_URL at it",
    )


async def kafka_reachable(settings: Settings, timeout_s: float = 3.0) -> str:
    """Open a TCP connection to a bootstrap server; `DependencyUnavailable` naming SM_KAFKA_BOOTSTRAP otherwise."""
    from stream_app.ingest.health import tcp_ok

    if await tcp_ok(settings.kafka_bootstrap, timeout_s):
        return f"a bootstrap server of {settings.kafka_bootstrap} accepted a connection"
    raise DependencyUnavailable(
        f"no Kafka bootstrap server of {settings.kafka_bootstrap} accepted a connection within {timeout_s:.0f} s",
        setting="SM_KAFKA_BOOTSTRAP",
        hint="start Kafka or point SM_KAFKA_BOOTSTRAP at it",
    )


def require_redis(settings: Settings, timeout_s: float = 3.0) -> None:
    """For commands that only read Redis (`query`, `counts`): fail fast, in one line."""
    asyncio.run(redis_reachable(settings, timeout_s))
