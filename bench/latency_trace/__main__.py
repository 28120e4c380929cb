"""Trace where a record's time goes, from the producer to its Redis aggregate (docs/serving.md).

    python -m bench.latency_trace --rate 255 --seconds 20 [--out DIR] [--model null:]

Starts a local broker and Redis, runs `bench.spine_bench.latency_run` (a steady stream at `--rate`
records/s into a fresh worker) with the hooks in `site/sitecustomize.py` loaded into the worker,
then joins the trace per record and prints each stage's p50 / p90 / p99 / max:

    produced -> on the loop     Kafka record timestamp to Faust handing the record to the event loop
                                (producer, broker, the consumer's fetch and its thread hop)
    on the loop -> taken        waiting in the stream buffer for `take_events` to cut the batch
    prepare                     fence read, validation, scoring
    prepared -> commit          waiting for the batch before it to finish its commit
    publish                     waiting for the broker's acknowledgement of the batch's records
    redis                       the aggregate write
    total                       produced -> Redis written

and the fetch requests that took longer than 50 ms, with the partitions they asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

REPO = Path(__file__).resolve().parents[2]
SITE = Path(__file__).resolve().parent / "site"
STAGES = (
    "produced -> on the loop",
    "on the loop -> taken",
    "prepare",
    "prepared -> commit",
    "publish",
    "redis",
    "total",
)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def partitions(asked: list[str]) -> str:
    """`posts-x:0, posts-x:2, reviews-x:1` -> `posts-x [0, 2]; reviews-x [1]`."""
    by_topic: dict[str, list[int]] = {}
    for name in asked:
        topic, _, partition = name.rpartition(":")
        by_topic.setdefault(topic, []).append(int(partition))
    return "; ".join(f"{topic} {sorted(parts)}" for topic, parts in sorted(by_topic.items()))


def timelines(lines: list[dict[str, Any]], skip_before: float = 0.0) -> list[dict[str, float]]:
    """One row per record counted: its stage durations in seconds."""
    received = {(line["tp"], line["o"]): line for line in lines if line["k"] == "record"}
    prepared_by = {tuple(r): line for line in lines if line["k"] == "prepare" for r in line["recs"]}
    inner = sorted((line for line in lines if line["k"] in ("publish", "redis")), key=lambda line: line["t0"])
    rows = []
    for commit in (line for line in lines if line["k"] == "commit" and line["recs"]):
        # Commits run one at a time, so the publish and Redis write inside one's span are its own.
        steps = {s["k"]: s for s in inner if commit["t0"] <= s["t0"] and s["t"] <= commit["t"]}
        batch = prepared_by.get(tuple(commit["recs"][0]))
        if batch is None or "publish" not in steps or "redis" not in steps:
            continue
        for topic, partition, offset in commit["recs"]:
            record = received.get((f"{topic}:{partition}", offset))
            if record is None or record["ts"] < skip_before:
                continue
            rows.append(
                {
                    "produced -> on the loop": record["t"] - record["ts"],
                    "on the loop -> taken": batch["t0"] - record["t"],
                    "prepare": batch["t"] - batch["t0"],
                    "prepared -> commit": commit["t0"] - batch["t"],
                    "publish": steps["publish"]["t"] - steps["publish"]["t0"],
                    "redis": steps["redis"]["t"] - steps["redis"]["t0"],
                    "total": steps["redis"]["t"] - record["ts"],
                }
            )
    return rows


def report(lines: list[dict[str, Any]], console: Console, skip_before: float) -> dict[str, Any]:
    rows = timelines(lines, skip_before)
    table: dict[str, Any] = {"records": len(rows), "stages_ms": {}}
    console.print(f"{len(rows)} records traced")
    console.print(f"{'stage':26s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'max':>8s}  (ms)")
    for stage in STAGES:
        values = [1000 * row[stage] for row in rows]
        figures = [quantile(values, 0.5), quantile(values, 0.9), quantile(values, 0.99), max(values)]
        table["stages_ms"][stage] = dict(zip(("p50", "p90", "p99", "max"), figures, strict=True))
        console.print(f"{stage:26s} " + " ".join(f"{v:8.1f}" for v in figures))
    slow = [row for row in rows if row["total"] > 0.5]
    if slow:
        console.print(f"{len(slow)} records over 500 ms; their median stages (ms):")
        console.print("  " + ", ".join(f"{s} {1000 * statistics.median(r[s] for r in slow):.0f}" for s in STAGES))
    fetches = [line for line in lines if line["k"] == "fetch"]
    last = max(line["ts"] for line in lines if line["k"] == "record")  # after it the stream is idle
    long = [f for f in fetches if f["t"] - f["t0"] > 0.05 and skip_before <= f["t0"] <= last]
    table["fetches"] = len(fetches)
    table["long_fetches"] = [
        {"ms": round(1000 * (f["t"] - f["t0"])), "new_data": f["new"], "asked": partitions(f["asked"])} for f in long
    ]
    console.print(f"{len(fetches)} fetch requests, {len(long)} over 50 ms while the stream ran")
    for f in table["long_fetches"][:20]:
        console.print(f"  {f['ms']} ms, data: {f['new_data']}, asked for {f['asked']}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, required=True, help="records per second (e.g. 10 %% of capacity)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--model", default="null:", help="SM_MODEL_DIR for the worker (default: the null model)")
    parser.add_argument("--out", type=Path, default=None, help="keep the trace and the worker log here")
    parser.add_argument("--json", type=Path, default=None, help="write the stage table here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import tempfile

    from bench.spine_bench import latency_run
    from stream_app.testing.kafka_local import LocalKafka
    from stream_app.testing.redis_local import LocalRedis

    console = Console()
    out = args.out or Path(tempfile.mkdtemp(prefix="sm-trace-"))
    out.mkdir(parents=True, exist_ok=True)
    trace = out / "trace.jsonl"
    trace.unlink(missing_ok=True)
    os.environ["SM_TRACE_FILE"] = str(trace)  # the worker inherits these; this process never imports the hooks
    os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE), str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {"SM_MODEL_DIR": args.model, "SM_WATCHLIST": str(REPO / "deploy/watchlist/demo.yaml")}
    env["SM_ALERTS_ENABLED"] = "true"
    with LocalKafka() as kafka, LocalRedis() as redis_server:
        import time

        started = time.time()
        row = latency_run(kafka, redis_server, args.rate, args.seconds, env, out / "run", console, int(args.rate * 60))
    console.print(f"bench: p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms at {args.rate:.0f} records/s")
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    produced = sorted(line["ts"] for line in lines if line["k"] == "record")
    # latency_run's first 20 records warm the worker up (it waits for them): not part of the stream.
    table = report(lines, console, skip_before=produced[20] if len(produced) > 20 else started)
    table["bench"] = row
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    console.print(f"trace: {trace}")


if __name__ == "__main__":
    main()
