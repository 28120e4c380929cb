"""The least the service needs from Redis: the commands it sends and the keys it touches.

`REDIS_COMMANDS` is every command the worker, the queries (HTTP API and CLI) and the alert
state send, including those run inside the store's, the alert state's and redis-py's lock scripts
(Redis checks a script's commands and keys against the caller's ACL too). A test derives the list from
a real worker run (tests/integration/test_security_redis.py) and the README's `ACL SETUSER` line is
`acl_setuser()`'s output, so code, test and docs stay in step.

Not listed: `CLIENT SETINFO`, which redis-py sends on connect to Redis >= 7.2 and whose refusal
it ignores (Redis 7.0, Debian 12's, has no such command, so an ACL naming it is an error there).
"""

from __future__ import annotations

REDIS_COMMANDS: tuple[str, ...] = (
    "del",  # lock release (script); a leaderboard reset (store script)
    "evalsha",  # the store's and the alert state's scripts; redis-py Lock's extend and release
    "expire",
    "expireat",  # store script: bucket and roll-up expiry
    "get",  # alert state script: is the lease still ours
    "hdel",
    "hget",
    "hgetall",
    "hkeys",  # the detector's active entities (a leaderboard's members)
    "hmget",
    "hset",
    "hsetnx",  # the store's layout and the case-insensitive entity index
    "lpush",
    "lrange",
    "ltrim",
    "pexpire",  # lock reacquire (script)
    "ping",  # connection health checks
    "sadd",
    "script|load",  # the store's and the alert state's scripts, and redis-py's lock scripts
    "set",  # lock acquire: SET NX PX
    "smembers",
    "zadd",
    "zrange",
    "zrangebyscore",
    "zrem",  # store script: an entity leaves a leaderboard
    "zremrangebyrank",
    "zrevrange",
    "zrevrangebyscore",
    "zscore",  # exact entity lookup
)


PLACEHOLDER = "<password>"  # printed in the docs, replaced by the operator


def acl_setuser(user: str = "sentiment", prefix: str = "sm", password: str = PLACEHOLDER) -> str:
    """The `ACL SETUSER` line for the service's user: its key prefix, no channels, only its commands."""
    commands = " ".join(f"+{c}" for c in REDIS_COMMANDS)
    return f"ACL SETUSER {user} reset on >{password} ~{prefix}:* resetchannels -@all {commands}"
