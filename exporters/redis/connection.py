"""One way to open Redis, single node or Cluster, from the one URL setting (SM_REDIS_URL).

`redis://` and `rediss://` (TLS) open one node; `redis+cluster://` and `rediss+cluster://` open
a Redis Cluster through any of its nodes (redis-py discovers the rest and follows MOVED and
failovers). Both clients offer the commands and pipelines the adapters use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ClusterDownError, NoScriptError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Client: TypeAlias = "aioredis.Redis | RedisCluster"
# Connection-level failures: retried, never a reason to skip a record (BusyLoadingError, an AOF
# replay, is a ConnectionError; a cluster mid-failover answers ClusterDownError or TryAgainError).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
)
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


def default_retry() -> Retry:
    return Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=8)


def connect(url: str, retry: Retry | None = None) -> Client:
    """A client for `url`; nothing is sent until the first command."""
    options: dict[str, Any] = {
        "retry": retry or default_retry(),
        "socket_timeout": 10,
    }
    scheme, sep, rest = url.partition("://")
    if scheme in CLUSTER_SCHEMES:
        return RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}{sep}{rest}", **options)
    return aioredis.Redis.from_url(
        url, retry_on_error=[RedisConnectionError, RedisTimeoutError], health_check_interval=30, **options
    )


class Script:
    """A Lua script called by its SHA: loaded on first use, and loaded again when a node answers
    NOSCRIPT (it restarted, or a replica that never saw the script was promoted). Every adapter's
    script goes through here, so that recovery is written once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._sha: str | None = None

    async def load(self, client: Client) -> str:
        if self._sha is None:
            self._sha = str(await client.script_load(self.source))
        return self._sha

    async def run_each(
        self, client: Client, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]], raise_on_error: bool = True
    ) -> list[Any]:
        """One call per `(keys, args)`, in one pipeline, replies in order. With `raise_on_error`
        off, a failed call's reply is its exception, as `Pipeline.execute` gives it."""
        sha = await self.load(client)
        try:
            async with client.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    pipe.evalsha(sha, len(keys), *keys, *args)
                replies = list(await pipe.execute(raise_on_error=raise_on_error))
        except NoScriptError:
            replies = [NoScriptError()]
        if any(isinstance(reply, NoScriptError) for reply in replies):
            self._sha = None
            return await self.run_each(client, calls, raise_on_error)
        return replies
