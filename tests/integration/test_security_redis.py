"""Redis with TLS and a least-privilege ACL user: a real worker, the API process's queries, the CLI
queries and the alert state all work as that user over rediss://; anything else is refused.
The same run derives the command list (COMMANDSTATS) and checks it against `REDIS_COMMANDS`,
the constant the README's `ACL SETUSER` line is generated from."""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from exporters.redis.acl import REDIS_COMMANDS, acl_setuser
from stream_app.testing.generate import SpikeScript, generate_stream
from stream_app.testing.redis_local import LocalRedis
from stream_app.wiring import create_topics
from tests.support.stack import REPO, settings_from
from tests.support.streamkit import drain, http_get, produce, wait_for
from tests.support.tls_certs import Certs, make_certs

pytestmark = pytest.mark.integration
USER, PASSWORD = "sentiment", "acl-pass-for-the-test"
WATCHLIST = REPO / "deploy" / "watchlist" / "demo.yaml"
ADMIN_COMMANDS = {"acl|setuser", "acl|log", "config|resetstat", "info", "client|setinfo"}
CONNECTION_COMMANDS = {"hello", "auth"}  # how a client logs in: allowed before any ACL applies
# In REDIS_COMMANDS but not always seen in a short run: the lock's release (a clean hand-over),
# health checks (every 30 s of idle connection), an entity leaving a leaderboard, a share ranking.
RARELY_SEEN = {"del", "ping", "zrem", "hdel"}


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[LocalRedis, Certs]]:
    certs = make_certs(tmp_path / "certs", "redis")
    with LocalRedis(tls=(certs.cert, certs.key, certs.ca)) as server:
        yield server, certs


def _client(server: LocalRedis, certs: Certs, **auth: Any) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, ssl=True, ssl_ca_certs=str(certs.ca), **auth)


def _service_url(server: LocalRedis, certs: Certs) -> str:
    return f"rediss://{USER}:{PASSWORD}@127.0.0.1:{server.port}/0?ssl_ca_certs={urllib.parse.quote(str(certs.ca))}"


def test_readme_shows_the_generated_acl_line() -> None:
    readme = (REPO / "README.md").read_text()
    assert acl_setuser() in readme, "README's ACL SETUSER line is stale: paste acl_setuser()'s output"


def test_worker_queries_and_alerts_run_as_a_tls_acl_user(tls_redis, stack_env, worker_factory, api_factory, tmp_path):  # type: ignore[no-untyped-def]
    server, certs = tls_redis
    prefix = stack_env["SM_REDIS_PREFIX"]
    admin = _client(server, certs)
    admin.execute_command(*acl_setuser(USER, prefix, PASSWORD).split())
    admin.config_resetstat()

    env = {
        "SM_REDIS_URL": _service_url(server, certs),
        "SM_WATCHLIST": str(WATCHLIST),
        "SM_ALERT_TICK_S": "0.5",
        "SM_ALERT_SETTLE_S": "0",
        "SM_ALERT_LEADER_TTL_S": "3",
    }
    settings = settings_from({**stack_env, **env})
    create_topics(settings)
    worker = worker_factory(**env)
    worker.wait_ready()
    # The detector's baseline learns from minutes that left its 60-minute window: 100 minutes of history.
    spike = SpikeScript(entity="Veltro Motors", start_minute=88, minutes=12, share=0.9)
    records = list(generate_stream(minutes=100, per_minute=60, seed=11, spike=spike))
    produce(settings.kafka_bootstrap, settings.topic_posts, [orjson.dumps(r) for k, r in records if k == "post"])
    produce(settings.kafka_bootstrap, settings.topic_reviews, [orjson.dumps(r) for k, r in records if k == "review"])

    def firing() -> bool:
        alerts = drain(settings.kafka_bootstrap, settings.topic_alerts, 0, timeout=1, settle=0)
        return any(a["status"] == "firing" for a in alerts)

    wait_for(firing, 240, "a firing alert with Redis behind TLS and an ACL", worker.log_tail)

    api = api_factory(**env)
    api.wait_ready()
    base = api.url
    status, body = http_get(f"{base}/alerts")
    assert status == 200 and "Veltro Motors" in {a["entity"] for a in orjson.loads(body)["active"]}
    paths = ["/entities", "/top?by=negative_share", "/top?by=volume", "/overview"]
    paths.append("/entities/Veltro%20Motors?window=1h")
    for path in paths:
        status, body = http_get(base + path)
        assert status == 200, (path, body)
    assert orjson.loads(http_get(f"{base}/entities/Veltro%20Motors?window=24h")[1])["volume"] > 0
    cli_env = {**worker.env, "PYTHONPATH": str(REPO)}
    for command in (["query", "Veltro Motors", "--window", "24h", "--json"], ["counts", "--minutes", "90", "--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "stream_app.cli", *command], env=cli_env, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()
    assert orjson.loads(done.stdout), "counts read nothing"

    # Nothing the service sent was refused, and what it sent is exactly the documented list.
    refused = admin.acl_log()
    assert not refused, [(e.get("object"), e.get("reason")) for e in refused]
    stats = admin.info("commandstats")
    observed = {name.removeprefix("cmdstat_") for name in stats} - ADMIN_COMMANDS - CONNECTION_COMMANDS
    assert observed <= set(REDIS_COMMANDS), f"add to REDIS_COMMANDS (and the README): {observed - set(REDIS_COMMANDS)}"
    unused = set(REDIS_COMMANDS) - observed - RARELY_SEEN - ADMIN_COMMANDS
    assert not unused, f"REDIS_COMMANDS holds commands no run sends: {unused}"
    log = worker.log_tail(1_000_000)
    assert "NOPERM" not in log and PASSWORD not in log

    # The user sees nothing else: other keys and other commands are refused, clearly.
    service = _client(server, certs, username=USER, password=PASSWORD)
    for attempt, words in [
        (lambda: service.flushall(), "flushall"),
        (lambda: service.keys("*"), "keys"),
        (lambda: service.config_get("dir"), "config"),
        (lambda: service.set("elsewhere:key", "x"), "key"),
        (lambda: service.get(f"{prefix}x:agg"), "key"),  # a sibling prefix
    ]:
        with pytest.raises(redis.exceptions.NoPermissionError, match=f"(?i)no permissions.*{words}"):
            attempt()
    with pytest.raises(redis.exceptions.AuthenticationError):
        _client(server, certs, username=USER, password="wrong").ping()
    with pytest.raises(redis.exceptions.ConnectionError):  # plaintext on the TLS port
        redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5, username=USER, password=PASSWORD).ping()
