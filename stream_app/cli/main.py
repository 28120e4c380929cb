"""The `sentiment-monitor` command. Settings are built here, in `main()`, never at import."""

from __future__ import annotations

import asyncio
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from stream_app.cli.alerts import alerts_app
from stream_app.cli.dev import dev_app, run_demo
from stream_app.cli.model import Domain, model_app
from stream_app.errors import BadQuery, SentimentMonitorError
from stream_app.ingest.preflight import check_kafka_access
from stream_app.logs import setup_logging
from stream_app.settings import Settings, load_settings
from stream_app.wiring import kafka_config

app = typer.Typer(help="Real-time sentiment monitoring over Kafka, ONNX and Redis.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event contracts.", no_args_is_help=True)
app.add_typer(model_app, name="model")
app.add_typer(dev_app, name="dev")
app.add_typer(alerts_app, name="alerts")
app.add_typer(topics_app, name="topics")
aggregates_app = typer.Typer(help="The Redis aggregates.", no_args_is_help=True)
app.add_typer(aggregates_app, name="aggregates")
app.add_typer(schemas_app, name="schemas")
console = Console()
_state = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        from stream_app.resources import version

        console.print(f"sentiment-monitor {version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback behind an error.")] = False,
) -> None:
    """Real-time sentiment monitoring over Kafka, ONNX and Redis."""
    _state["debug"] = debug


def settings() -> Settings:
    return load_settings()


@app.command()
def worker() -> None:
    """Run a stream worker with the settings from SM_* variables and .env."""
    from stream_app.cli.preflight import validate_local
    from stream_app.wiring import run_worker

    config = settings()
    setup_logging(config.log_level, config.log_json)
    validate_local(config)  # the watch-list and the model directory, before Kafka, Redis and the model load
    check_kafka_access(kafka_config(config))
    run_worker(config)


@app.command()
def api() -> None:
    """Run the API process: queries, alerts and the live page (SM_API_HOST, SM_API_PORT), apart from workers."""
    from stream_app.wiring import run_api

    config = settings()
    setup_logging(config.log_level, config.log_json)
    from stream_app.cli.preflight import load_watchlist, require_redis

    load_watchlist(config)
    require_redis(config)
    run_api(config)


@app.command()
def check(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Redis and for Kafka")] = 3.0,
) -> None:
    """Validate settings, the model directory and the watch-list; reach Redis and Kafka."""
    from stream_app.cli.check import print_results, run_checks

    if not print_results(console, run_checks(timeout)):
        raise typer.Exit(1)


@aggregates_app.command("rebuild")
def aggregates_rebuild(
    batch: Annotated[int, typer.Option(help="Records per write, per input partition")] = 500,
) -> None:
    """Recompute the aggregates from the scored-events topic into the store (upgrade, disaster recovery).

    Safe while workers run and safe to repeat: the store's fences skip what it already holds."""
    from rich.progress import Progress

    from stream_app.cli.preflight import require_redis
    from stream_app.wiring import rebuild_aggregates

    config = settings()
    require_redis(config)
    with Progress(console=console) as bar:
        task = bar.add_task("rebuilding", total=None)
        read, applied = asyncio.run(
            rebuild_aggregates(config, lambda done, total: bar.update(task, completed=done, total=total), batch)
        )
    console.print(f"read {read} records from {config.topic_scored} and {config.topic_dead_letter}; {applied} were new")


@topics_app.command("create")
def topics_create() -> None:
    """Create the input, output and dead-letter topics with explicit partition counts."""
    from stream_app.wiring import create_topics

    config = settings()
    check_kafka_access(kafka_config(config))
    for name, outcome in create_topics(config).items():
        console.print(f"{name}: {outcome}")


@schemas_app.command("export")
def schemas_export() -> None:
    """Regenerate the JSON Schema files in schemas/ from the typed models."""
    import schemas

    for path in schemas.write_schemas():
        console.print(str(path))


@app.command()
def replay(
    file: Path,
    topic: Annotated[str, typer.Option(help="Topic to produce to")],
    rate: Annotated[float, typer.Option(help="Records per second; 0 for as fast as possible")] = 0,
) -> None:
    """Produce a CSV or JSONL file into Kafka."""
    from rich.progress import Progress

    from stream_app.ingest.kafka_admin import read_records
    from stream_app.wiring import replay as do_replay

    config = settings()
    check_kafka_access(kafka_config(config))
    records = list(read_records(file))
    with Progress(console=console) as progress:
        task = progress.add_task(f"→ {topic}", total=len(records))
        sent = do_replay(config, ((topic, r) for r in records), rate or None, lambda n: progress.advance(task, n))
    console.print(f"sent {sent} records to {topic}")


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Directory for posts.jsonl and reviews.jsonl")] = Path("feed"),
    minutes: int = 10,
    per_minute: int = 60,
    seed: int = 7,
    spike_entity: str = "Veltro Motors",
    spike_start: int = 6,
    spike_minutes: int = 3,
    no_spike: bool = False,
) -> None:
    """Write a synthetic stream of posts and reviews with a scripted negative spike."""
    from stream_app.testing.generate import SpikeScript, generate_stream

    spike = None if no_spike else SpikeScript(spike_entity, spike_start, spike_minutes)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"post": 0, "review": 0}
    with (out / "posts.jsonl").open("wb") as posts, (out / "reviews.jsonl").open("wb") as reviews:
        for kind, record in generate_stream(minutes, per_minute, seed, spike=spike):
            (posts if kind == "post" else reviews).write(orjson.dumps(record) + b"\n")
            counts[kind] += 1
    console.print(f"wrote {counts['post']} posts and {counts['review']} reviews to {out}/")


@app.command()
def score(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts; one per line on stdin when none")] = None,
    model: Annotated[Path | None, typer.Option(help="Model directory (default: SM_MODEL_DIR)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    domain: Annotated[
        Domain, typer.Option(help="Which head scores the texts (a model without heads scores all alike)")
    ] = Domain.social,
) -> None:
    """Label texts. Exactly one output line per input, never wrapped, so scripts can zip them."""
    from stream_app.cli.preflight import check_model_dir
    from stream_app.engine.onnx_classifier import OnnxClassifier

    config = settings()
    check_model_dir(model or config.model_dir, "--model" if model else "SM_MODEL_DIR")
    lines = texts or [line.rstrip("\n") for line in sys.stdin]
    classifier = OnnxClassifier(
        model or config.model_dir,
        config.provider,
        config.intra_op_threads,
        config.max_length,
        long_text=config.long_text,
    )
    out = sys.stdout
    for start in range(0, len(lines), 256):
        chunk = lines[start : start + 256]
        for text, result in zip(chunk, classifier.classify(chunk, [domain.value] * len(chunk)), strict=True):
            if as_json:
                record = {
                    "label": result.label,
                    "score": result.score,
                    "probabilities": result.probabilities,
                    "domain": domain.value,
                }
                out.write(orjson.dumps(record).decode() + "\n")
            else:
                flat = " ".join(text.split())  # an argument may hold newlines; the output line may not
                out.write(f"{result.label:<8} {result.score:+.3f}  {flat}\n")
    out.flush()


@app.command()
def counts(
    source: Annotated[str, typer.Option(help="Source (platform), e.g. x, reddit, reviews")] = "",
    minutes: int = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per-minute counts per source, as stored in Redis."""
    from stream_app.cli.preflight import require_redis
    from stream_app.pipeline.queries import source_minutes
    from stream_app.wiring import redis_store

    config = settings()
    require_redis(config)

    async def read() -> dict[str, list[dict[str, object]]]:
        store = redis_store(config)
        out: dict[str, list[dict[str, object]]] = {}
        try:
            for name in [source] if source else await store.sources():
                buckets = await source_minutes(store, name, minutes)
                out[name] = [
                    {"minute": datetime.fromtimestamp(minute, UTC).isoformat(), **total.as_dict()}
                    for minute, total in buckets.items()
                    if total.volume
                ]
        finally:
            await store.close()
        return out

    data = asyncio.run(read())
    if as_json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table("source", "minute", "negative", "neutral", "positive", "volume", "mean score")
    for name, rows in data.items():
        for row in rows:
            cells = [str(row[k]) for k in ("negative", "neutral", "positive", "volume")]
            table.add_row(name, str(row["minute"]), *cells, f"{row['mean_score']:+.3f}")
    console.print(table)


@app.command()
def query(
    entity: str,
    window: Annotated[str, typer.Option(help="Window: 1m, 5m, 1h, 24h, ...")] = "5m",
    source: Annotated[str | None, typer.Option(help="Only this source (platform)")] = None,
    since: Annotated[str | None, typer.Option(help="Also print a series from this ISO time or epoch seconds")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rolling sentiment for an entity, from the Redis aggregates."""
    from stream_app.cli.preflight import require_redis
    from stream_app.pipeline.queries import entity_series, entity_window
    from stream_app.wiring import redis_store

    config = settings()
    require_redis(config)

    async def read() -> dict[str, Any]:
        store = redis_store(config)
        try:
            name = await _resolve_entity(store, config, entity)
            out: dict[str, Any] = {"window": await entity_window(store, name, window, source)}
            if since:
                numeric = since.replace(".", "", 1).isdigit()
                start = float(since) if numeric else datetime.fromisoformat(since).timestamp()
                out["series"] = await entity_series(store, name, window, start, source)
            return out
        finally:
            await store.close()

    try:
        data = asyncio.run(read())
    except (ValueError, BadQuery) as exc:
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    title = f"{data['window']['entity']} ({source or 'all sources'}), window {window}"
    table = Table("from", "negative", "neutral", "positive", "volume", "negative share", "mean score", title=title)
    rows = [data["window"], *(data["series"]["points"] if "series" in data else [])]
    for row in rows:
        start = datetime.fromtimestamp(row.get("from", row.get("start")), UTC).isoformat()
        cells = [str(row[k]) for k in ("negative", "neutral", "positive", "volume")]
        table.add_row(start, *cells, f"{row['negative_share']:.3f}", f"{row['mean_score']:+.3f}")
    console.print(table)


@app.command()
def demo(
    minutes: int = 100,
    per_minute: int = 60,
    rate: float = 400.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop this many seconds after the replay; default: wait for Ctrl-C")
    ] = None,
) -> None:
    """Start local Kafka and Redis and a worker; replay history with a spike, then stream live."""
    run_demo(console, minutes, per_minute, rate, duration)


async def _resolve_entity(store: Any, config: Settings, entity: str) -> str:
    """The stored name `entity` means (case, watch-list aliases), else one line with the closest names."""
    from stream_app.cli.preflight import load_watchlist
    from stream_app.pipeline.lookup import alias_table
    from stream_app.pipeline.queries import find_entity

    found = await find_entity(store, entity, alias_table(load_watchlist(config)))
    if found.entity is None:
        close = ", ".join(found.suggestions) or "none (`sentiment-monitor counts` lists what is stored)"
        raise SentimentMonitorError(f"unknown entity {entity!r}", hint=f"closest names: {close}")
    return found.entity


def main() -> None:
    """Errors this project raises on purpose print as one line and exit 2; `--debug` adds the traceback."""
    try:
        app()
    except SentimentMonitorError as exc:
        if _state["debug"] or "--debug" in sys.argv[1:]:
            traceback.print_exc(file=sys.stderr)
        # Plain write, not rich: a terminal-width wrap would break the one line.
        sys.stderr.write(f"error: {exc.one_line()}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None
