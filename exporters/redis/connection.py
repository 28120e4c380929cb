"""One way to open Redis, single node or Cluster, from the one URL setting (SM_REDIS_URL).

`redis://` and `rediss://` (TLS) open one node; `redis+cluster://` and `rediss+cluster://` open
a Redis Cluster through any of its nodes (redis-py discovers the rest and follows MOVED and
failovers). Both clients offer the commands and pipelines the adapters use.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ClusterDownError, TryAgainError
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
