"""End-to-end spine benchmark on real Kafka, a real worker and real Redis.

1. Bare engine: texts/s of `OnnxClassifier.classify` on the feed's texts, at the worker's batch size.
2. Throughput: a backlog of N records is produced first, then a worker drains it; we time
   from the first count appearing in Redis to the last. Twice: per-source counts only, and
   with entity aggregation (watch-list + dynamic entities), to price the aggregates.
3. Latency: records are produced at a steady rate below capacity; the k-th record's
   latency is when Redis's total volume first reaches k minus when record k was produced.
4. Steady-state cost: at a quarter of capacity, each configuration's CPU per message
   (worker plus Redis server), paired run by run: the aggregation's overhead as a share.

    python bench/spine_bench.py --records 3000 --repeats 3
    python bench/spine_bench.py --null-model --records 20000 --json bench/results/null_spine.json

`--null-model` measures the framework's ceiling instead (bench/null_spine.py).

Medians over the repeats; each repeat runs the engine and both configurations back to back,
and every ratio is the median of the per-repeat ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.null_spine import run as run_null
from bench.spine_kit import (
    REPO,
    bare_engine,
    drain_once,
    feed,
    latency_run,
    steady_cost,
)
from stream_app.settings import load_settings
from stream_app.testing.kafka_local import LocalKafka
from stream_app.testing.redis_local import LocalRedis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument(
        "--latency-loads", default=None, help="Shares of the measured capacity (default 0.25,0.5; --null-model 0.5,0.1)"
    )
    parser.add_argument("--steady-repeats", type=int, default=3, help="Paired steady-state CPU runs (0: none)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--null-model", action="store_true", help="The framework's ceiling (bench/null_spine.py)")
    parser.add_argument("--json", type=Path, default=None, help="--null-model: where its JSON goes")
    parser.add_argument("--no-engine-pair", dest="engine_pair", action="store_false", help="--null-model: skip")
    parser.add_argument("--workdir", default=None, help="--null-model: keep worker logs here")
    args = parser.parse_args()
    console = Console()
    if args.null_model:
        args.latency_loads = args.latency_loads or "0.5,0.1"
        run_null(args, console)
        return
    args.latency_loads = args.latency_loads or "0.25,0.5"
    settings = load_settings()
    result: dict[str, Any] = {
        "records": args.records,
        "batch_max_size": settings.batch_max_size,
        "repeats": args.repeats,
    }
    backlog = feed(args.records, seed=1)
    watchlist = str(REPO / "deploy" / "watchlist" / "demo.yaml")
    configs = {
        "counts_only": {"SM_MAX_DYNAMIC_ENTITIES": "0", "SM_WATCHLIST": ""},
        "with_entities": {"SM_WATCHLIST": watchlist},
    }
    workdir = Path(tempfile.mkdtemp(prefix="sm-bench-"))
    engine_runs: list[float] = []
    runs: dict[str, list[float]] = {name: [] for name in configs}
    with LocalKafka() as kafka, LocalRedis() as redis_server:
        for repeat in range(args.repeats):
            # The bare engine, then each configuration, interleaved so drift hits all alike.
            engine_runs.append(
                bare_engine(settings.model_dir, [r["text"] for r in backlog], settings.batch_max_size, 1)
            )
            for name, extra in configs.items():
                runs[name].append(drain_once(kafka, redis_server, backlog, f"{name}{repeat}", extra, workdir, console))
            console.print(
                f"repeat {repeat + 1}: engine {engine_runs[-1]:.0f}/s, "
                + ", ".join(f"{n} {v[-1]:.0f}/s" for n, v in runs.items())
            )
        engine = statistics.median(engine_runs)
        result["bare_engine_texts_per_s"] = engine
        result["per_repeat"] = {"bare_engine": engine_runs, **runs}
        # Ratios are medians of per-repeat ratios: each repeat's runs are minutes apart, not
        # the whole bench apart, so the host's slow stretches cancel within a repeat.
        for name, values in runs.items():
            result[f"e2e_{name}_msgs_per_s"] = statistics.median(values)
            result[f"e2e_{name}_to_engine_ratio"] = statistics.median(
                v / e for v, e in zip(values, engine_runs, strict=True)
            )
        result["aggregation_overhead"] = 1 - statistics.median(
            w / c for w, c in zip(runs["with_entities"], runs["counts_only"], strict=True)
        )
        result["latency"] = [
            {
                "load": load,
                **latency_run(
                    kafka,
                    redis_server,
                    load * result["e2e_with_entities_msgs_per_s"],
                    args.latency_seconds,
                    configs["with_entities"],
                    workdir / f"l{int(load * 100)}",
                    console,
                ),
            }
            for load in (float(x) for x in args.latency_loads.split(","))
        ]
        result["steady_state"] = steady_cost(
            kafka, redis_server, 0.25 * result["e2e_with_entities_msgs_per_s"], args, configs, workdir, console
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spine_bench.json").write_text(json.dumps(result, indent=2))
    console.print(result)


if __name__ == "__main__":
    main()
