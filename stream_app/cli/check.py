"""`sentiment-monitor check`: settings, model directory, watch-list, Redis and Kafka, as a table."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stream_app.engine.null import is_null_model
from stream_app.errors import SentimentMonitorError
from stream_app.ingest.preflight import check_kafka_access
from stream_app.settings import Settings, load_settings
from stream_app.wiring import kafka_config


@dataclass(frozen=True)
class Result:
    component: str
    ok: bool
    detail: str


def _problem(exc: SentimentMonitorError) -> str:
    return exc.one_line()


def _local(name: str, probe: Callable[[], str]) -> Result:
    try:
        return Result(name, True, probe())
    except SentimentMonitorError as exc:
        return Result(name, False, _problem(exc))


async def _remote(name: str, probe: Awaitable[str]) -> Result:
    try:
        return Result(name, True, await probe)
    except SentimentMonitorError as exc:
        return Result(name, False, _problem(exc))


def _watchlist_detail(config: Settings) -> str:
    from stream_app.cli.preflight import load_watchlist

    watch = load_watchlist(config)
    if config.watchlist is None:
        return "not set (SM_WATCHLIST): only cashtags, hashtags and review brands are tracked"
    return f"{config.watchlist}: {len(watch.entities)} entities"


async def _dependencies(config: Settings, timeout_s: float) -> list[Result]:
    from stream_app.cli.preflight import kafka_reachable, redis_reachable

    return list(
        await asyncio.gather(
            _remote("redis", redis_reachable(config, timeout_s)),
            _remote("kafka", kafka_reachable(config, timeout_s)),
        )
    )


def run_checks(timeout_s: float = 3.0) -> list[Result]:
    """Every check, in order; later ones are skipped (and fail) when settings do not load."""
    from stream_app.cli.preflight import check_model_dir

    try:
        config = load_settings()
    except SentimentMonitorError as exc:
        skipped = [Result(n, False, "skipped: settings are invalid") for n in ("model", "watch-list", "redis", "kafka")]
        return [Result("settings", False, _problem(exc)), *skipped]
    return [
        Result("settings", True, f"valid (app id {config.app_id}, prefix {config.redis_prefix})"),
        _local("model", lambda: _model_detail(config, check_model_dir)),
        _local("watch-list", lambda: _watchlist_detail(config)),
        *asyncio.run(_dependencies(config, timeout_s)),
        _local("kafka auth", lambda: _kafka_auth_detail(config)),
    ]


def _model_detail(config: Settings, check_model_dir: Callable[[Path], str]) -> str:
    if is_null_model(config.model_dir):
        return "null: (the bench-only null model)"
    return check_model_dir(config.model_dir)


def _kafka_auth_detail(config: Settings) -> str:
    """The worker's own preflight: SASL credentials and the TLS certificate, one connection each."""
    check_kafka_access(kafka_config(config))
    if config.kafka_security_protocol == "PLAINTEXT":
        return "PLAINTEXT: no credentials to check"
    return f"{config.kafka_security_protocol}: credentials and certificate not refused (reachability: kafka row)"


def print_results(console: Console, results: list[Result]) -> bool:
    """The table; True when everything passed."""
    table = Table("component", "status", "detail", title="sentiment-monitor check")
    for result in results:
        status = "[green]ok[/green]" if result.ok else "[red]FAIL[/red]"
        table.add_row(result.component, status, result.detail)
    console.print(table)
    return all(result.ok for result in results)
