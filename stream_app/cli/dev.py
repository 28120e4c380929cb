"""`dev up|down|status` and the demo: local Kafka and Redis for developers, never for production."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import typer
from pydantic import SecretStr
from rich.console import Console

from stream_app.resources import demo_watchlist
from stream_app.settings import Settings
from stream_app.testing.kafka_local import LocalKafka, default_cache_dir, free_port
from stream_app.testing.redis_local import LocalRedis

dev_app = typer.Typer(help="Local Kafka and Redis for development.", no_args_is_help=True)
console = Console()


def _state_file() -> Path:
    return default_cache_dir() / "dev" / "state.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _env_lines(bootstrap: str, redis_url: str) -> str:
    return f"SM_KAFKA_BOOTSTRAP={bootstrap}\nSM_REDIS_URL={redis_url}"


@dev_app.command("up")
def dev_up() -> None:
    """Start Kafka (KRaft) and Redis on loopback; they keep running until `dev down`."""
    state = _state_file()
    if state.exists() and all(_alive(p) for p in orjson.loads(state.read_bytes())["pids"]):
        console.print("already up:")
        dev_status()
        return
    root = state.parent
    kafka = LocalKafka(data_dir=root / "kafka").start()
    redis = LocalRedis(data_dir=root / "redis").start()
    state.write_bytes(
        orjson.dumps(
            {
                "pids": [kafka.pid, redis.pid],
                "kafka": kafka.bootstrap,
                "redis": redis.url,
            }
        )
    )
    console.print(_env_lines(kafka.bootstrap, redis.url))


@dev_app.command("down")
def dev_down() -> None:
    """Stop what `dev up` started and remove its data."""
    state = _state_file()
    if not state.exists():
        console.print("nothing running")
        return
    for pid in orjson.loads(state.read_bytes())["pids"]:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
    state.unlink()
    import shutil

    shutil.rmtree(state.parent, ignore_errors=True)
    console.print("stopped")


@dev_app.command("status")
def dev_status() -> None:
    """Print whether the local services run, and the settings that reach them."""
    state = _state_file()
    if not state.exists():
        console.print("down")
        raise typer.Exit(1)
    data = orjson.loads(state.read_bytes())
    up = all(_alive(p) for p in data["pids"])
    console.print("up" if up else "partly down (run `dev down`, then `dev up`)")
    console.print(_env_lines(data["kafka"], data["redis"]))


def _get_json(url: str, token: SecretStr | None) -> Any:
    import urllib.request

    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:  # noqa: S310 - http:// URL this command built from its own port
        return orjson.loads(response.read())


def _print_top(console: Console, base: str, token: SecretStr | None) -> None:
    """One look at the live aggregates, so the demo shows the spike it replayed."""
    rows: list[dict[str, object]] = []
    with console.status("waiting for the worker to catch up …"):
        for _ in range(120):  # until two reads a second apart agree, at most two minutes
            time.sleep(1)
            try:
                latest = _get_json(f"{base}/top?by=negative_share&window=24h&min_volume=20", token)["entities"]
            except OSError:
                continue
            if latest and latest == rows:
                break
            rows = latest
    console.print("[bold]top entities by negative share (24h)[/bold]; the scripted spike is on Veltro Motors:")
    for row in rows[:6]:
        console.print(f"  {row['entity']:<18} volume {row['volume']:>5}  negative share {row['negative_share']:.2f}")


def _print_alerts(console: Console, base: str, token: SecretStr | None) -> None:
    try:
        alerts = _get_json(f"{base}/alerts", token)
    except OSError:
        return
    console.print("[bold]alerts[/bold] (newest first; also on the alerts topic):")
    for alert in alerts["recent"][:6]:
        console.print(f"  {alert['status']:<9} {alert['severity']:<8} {alert['summary']}", soft_wrap=True)
    if not alerts["recent"]:
        console.print("  none yet")


def _print_links(console: Console, base: str, worker_base: str, settings: Settings, redis_port: int) -> None:
    console.print(f"[bold green]live dashboard: {base}/dashboard[/bold green]", soft_wrap=True)
    if settings.web_token:
        console.print("  (SM_WEB_TOKEN is set: open it as /dashboard#token=<your token>)")
    console.print(f"  API: {base}/overview  {base}/alerts  {base}/top?by=negative_share&window=5m", soft_wrap=True)
    console.print(f"  {base}/entities/Veltro%20Motors?window=5m", soft_wrap=True)
    console.print(f"  worker metrics: {worker_base}/metrics   API metrics: {base}/metrics", soft_wrap=True)
    console.print(
        f"  alerts topic: {settings.topic_alerts}; Redis: redis-cli -p {redis_port} --scan --pattern 'sm:*'",
        soft_wrap=True,
    )


def _stream_live(
    settings: Settings,
    worker: subprocess.Popen[bytes],
    topic_of: dict[str, str],
    per_minute: int,
    duration: float | None,
) -> None:
    """One minute of fresh posts at a time, stamped with the coming minute, sent in real time."""
    from stream_app.testing.generate import generate_stream
    from stream_app.wiring import replay

    deadline = None if duration is None else time.monotonic() + duration
    seed = 1000
    while worker.poll() is None and (deadline is None or time.monotonic() < deadline):
        seed += 1
        live = generate_stream(1, per_minute, seed=seed, start=datetime.now(UTC), spike=None)
        window = 60.0 if deadline is None else max(1.0, min(60.0, deadline - time.monotonic()))
        replay(settings, [(topic_of[k], r) for k, r in live][: int(per_minute * window / 60)], per_minute / 60)


def run_demo(console: Console, minutes: int, per_minute: int, rate: float, duration: float | None) -> None:
    """Everything the README's main command promises, torn down on Ctrl-C: a backfill of
    `minutes` of history with a spike, replayed at `rate`, then a live trickle in real time."""
    from rich.progress import Progress

    from stream_app.settings import load_settings
    from stream_app.testing.generate import SpikeScript, generate_stream
    from stream_app.wiring import create_topics, replay

    workdir = Path(tempfile.mkdtemp(prefix="sm-demo-"))
    console.print("[bold]starting Kafka (KRaft) and Redis on 127.0.0.1 …[/bold]")
    with LocalKafka() as kafka, LocalRedis() as redis:
        web_port = int(os.environ.get("SM_WEB_PORT", free_port()))
        api_port = int(os.environ.get("SM_API_PORT", free_port()))
        watchlist = os.environ.get("SM_WATCHLIST", str(demo_watchlist()))
        env = {
            "SM_WATCHLIST": watchlist,
            "SM_ALERT_TICK_S": "1",
            **os.environ,
            "SM_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "SM_REDIS_URL": redis.url,
            "SM_WEB_PORT": str(web_port),
            "SM_API_PORT": str(api_port),
            "SM_DATA_DIR": str(workdir / "worker"),
        }
        settings = load_settings(kafka_bootstrap=kafka.bootstrap, redis_url=redis.url, web_port=web_port)
        for name, outcome in create_topics(settings).items():
            console.print(f"topic {name}: {outcome}")
        log = (workdir / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream_app.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        api_log = (workdir / "api.log").open("wb")
        api = subprocess.Popen(  # the page and the queries: a process of their own, as in production
            [sys.executable, "-m", "stream_app.cli", "api"], env=env, stdout=api_log, stderr=subprocess.STDOUT
        )
        topic_of = {"post": settings.topic_posts, "review": settings.topic_reviews}
        try:
            spike = SpikeScript(start_minute=minutes - 10, minutes=5)
            records = [(topic_of[k], r) for k, r in generate_stream(minutes, per_minute, spike=spike)]
            base = f"http://127.0.0.1:{api_port}"
            console.print(f"worker pid {worker.pid}, log {workdir / 'worker.log'}")
            console.print(f"API pid {api.pid}, log {workdir / 'api.log'}")
            _print_links(console, base, f"http://127.0.0.1:{web_port}", settings, redis.port)
            with Progress(console=console) as progress:
                task = progress.add_task(f"replaying {minutes} min of history", total=len(records))
                replay(settings, records, rate, progress=lambda n: progress.advance(task, n))
            console.print("[green]history replayed[/green]; now streaming live posts. Ctrl-C to stop.")
            _print_top(console, base, settings.web_token)
            _print_alerts(console, base, settings.web_token)
            _stream_live(settings, worker, topic_of, per_minute, duration)
            if worker.poll() is not None:
                console.print(f"[red]worker exited with {worker.returncode}[/red]; see {workdir / 'worker.log'}")
        except KeyboardInterrupt:
            console.print("stopping …")
        finally:
            for process in (api, worker):
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                    try:
                        process.wait(30)
                    except subprocess.TimeoutExpired:
                        process.kill()
            log.close()
            api_log.close()
    console.print("stopped cleanly")
