"""The least the service needs from Redis: the commands it sends and the keys it touches.

`REDIS_COMMANDS` is every command the worker, the queries (HTTP API and CLI) and the alert
state send, including those run inside redis-py's lock scripts. A test derives the list from
a real worker run (tests/integration/test_security_redis.py) and the README's `ACL SETUSER` line is
`acl_setuser()`'s output, so code, test and docs stay in step.

Not listed: `CLIENT SETINFO`, which redis-py sends on connect to Redis >= 7.2 and whose refusal
it ignores (Redis 7.0, Debian 12's, has no such command, so an ACL naming it is an error there).
"""

from __future__ import annotations

REDIS_COMMANDS: tuple[str, ...] = (
    "del",  # lock release (script)
    "evalsha",  # redis-py Lock: extend and release run as Lua scripts
    "exec",
    "expire",
    "get",
    "hdel",
    "hget",
    "hgetall",
    "hmget",
    "hset",
    "hvals",
    "lpush",
    "lrange",
    "ltrim",
    "multi",
    "pexpire",  # lock reacquire (script)
    "ping",  # connection health checks
    "scan",
    "script|load",  # redis-py loads the lock scripts on first use
    "set",  # lock acquire: SET NX PX
    "unwatch",
    "watch",
    "zadd",
    "zrange",
    "zrangebyscore",
    "zremrangebyrank",
)


PLACEHOLDER = "<password>"  # printed in the docs, replaced by the operator


def acl_setuser(user: str = "sentiment", prefix: str = "sm", password: str = PLACEHOLDER) -> str:
    """The `ACL SETUSER` line for the service's user: its key prefix, no channels, only its commands."""
    commands = " ".join(f"+{c}" for c in REDIS_COMMANDS)
    return f"ACL SETUSER {user} reset on >{password} ~{prefix}:* resetchannels -@all {commands}"
