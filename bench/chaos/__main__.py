"""`python -m bench.chaos [--short] [--only r1,r6] [--json PATH]`: run the chaos scenarios and print one table."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from bench.chaos import lost_writes, scenarios, soak
from bench.chaos.check import Result
from bench.chaos.stack import AofRedis, start_kafka, temp_root


def plan(short: bool, env: scenarios.Env, args: argparse.Namespace) -> list[tuple[str, object]]:
    """The scenarios in run order. R6, the soak, is long (35 minutes by default): full suite only."""
    if short:
        return [
            ("r1", lambda: scenarios.kill_workers(env, kills=3)),
            ("r3", lambda: scenarios.redis_outage(env, signal.SIGKILL, 15)),
            ("r5", lambda: scenarios.fuzz(env, 2000)),
            ("sd", lambda: scenarios.shutdown_with_redis_down(env)),
            ("r7", lambda: lost_writes.restored_from_older_snapshot(env)),
            ("r8", lambda: lost_writes.cluster_failover_and_kills(env)),
        ]
    return [
        ("r1", lambda: scenarios.kill_workers(env, kills=10)),
        ("r2", lambda: scenarios.scale(env)),
        ("r3s", lambda: scenarios.redis_outage(env, signal.SIGSTOP, 30)),
        ("r3k", lambda: scenarios.redis_outage(env, signal.SIGKILL, 30)),
        ("r4", lambda: scenarios.broker_outage(env, 30)),
        ("r5", lambda: scenarios.fuzz(env, 10_000)),
        ("sd", lambda: scenarios.shutdown_with_redis_down(env)),
        ("r7", lambda: lost_writes.restored_from_older_snapshot(env)),
        ("r8", lambda: lost_writes.cluster_failover_and_kills(env)),
        ("r6", lambda: soak.soak(env, args.warmup_minutes, args.soak_minutes, args.soak_rate)),
    ]


def table(results: list[Result]) -> Table:
    out = Table("test", "in", "scored", "dead", "lost", "dup", "keys wrong", "recovery s", "result", title="chaos")
    for r in results:
        out.add_row(
            r.name, str(r.records_in), str(r.scored), str(r.dead), str(r.lost), str(r.duplicates),
            f"{r.keys_mismatched}/{r.keys_checked}", "-" if r.recovery_s is None else f"{r.recovery_s:.1f}",
            ("[green]pass[/green]" if r.passed else "[red]FAIL[/red] " + "; ".join(r.failures))
            + (f" ({r.extra['note']})" if "note" in r.extra else ""),
        )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="the CI subset (about 4 minutes)")
    parser.add_argument("--only", default="", help="comma-separated scenario ids, e.g. r1,r5")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--soak-minutes", type=float, default=30.0, help="R6: measured minutes (default 30)")
    parser.add_argument("--warmup-minutes", type=float, default=5.0, help="R6: warm-up minutes (default 5)")
    parser.add_argument("--soak-rate", type=float, default=100.0, help="R6: valid records per second (default 100)")
    args = parser.parse_args(argv)
    root = temp_root()
    console = Console(width=200)
    results: list[Result] = []
    kafka = start_kafka(root)
    redis = AofRedis(root / "redis").start()
    try:
        env = scenarios.Env(kafka, redis, root)
        only = {s for s in args.only.split(",") if s}
        for key, run in plan(args.short, env, args):
            if only and key not in only:
                continue
            started = time.monotonic()
            try:
                result = run()  # type: ignore[operator]
            except Exception as exc:  # a scenario that breaks the harness is a failure, not a crash
                result = Result(key, failures=[f"{type(exc).__name__}: {str(exc)[:300]}"])
            result.extra["seconds"] = round(time.monotonic() - started, 1)
            results.append(result)
            console.print(table(results[-1:]))
    finally:
        redis.stop()
        kafka.stop()
        kafka._process = None
        shutil.rmtree(root, ignore_errors=True)
    console.print(table(results))
    if args.json:
        args.json.write_bytes(
            orjson.dumps([asdict(r) | {"passed": r.passed} for r in results], option=orjson.OPT_INDENT_2)
        )
    return 0 if results and all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
