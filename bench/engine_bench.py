"""Engine throughput and latency: ONNX Runtime vs a PyTorch `transformers` pipeline.

Same texts (tweet-length, from the synthetic generator), same machine, same run.
Reports the median over several runs per batch size, as Markdown and JSON.

    python bench/engine_bench.py --model models/default --checkpoint build/train/checkpoint

Without --checkpoint the PyTorch side loads the base MiniLM with a fresh 3-class head:
the same architecture and so the same compute, though not the same weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

BATCH_SIZES = (1, 8, 32, 128)


def tweet_texts(n: int) -> list[str]:
    from stream_app.testing.generate import generate_stream

    texts = [r["text"] for _, r in generate_stream(minutes=n // 60 + 1, per_minute=60, seed=5)]
    return texts[:n]


def one_pass(fn: Callable[[list[str]], Any], texts: list[str], batch: int) -> tuple[float, float]:
    """Throughput of one pass over `texts`, and its median per-batch latency."""
    per_batch = []
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        t0 = time.perf_counter()
        fn(texts[i : i + batch])
        per_batch.append(time.perf_counter() - t0)
    return len(texts) / (time.perf_counter() - start), statistics.median(per_batch)


def time_interleaved(
    engines: dict[str, Callable[[list[str]], Any]], texts: list[str], batch: int, runs: int, progress: Progress
) -> dict[str, dict[str, Any]]:
    """Each run times every engine back to back, so the speed-up of one run compares passes a
    second or two apart; on a shared machine whose speed drifts by tens of percent over minutes,
    the median of those per-run ratios is far steadier than a ratio of two separate medians."""
    passes: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    task = progress.add_task(f"bs={batch}", total=runs)
    for fn in engines.values():
        fn(texts[: max(batch, 8)])  # warm-up
    for _ in range(runs):
        for name, fn in engines.items():
            passes[name].append(one_pass(fn, texts, batch))
        progress.advance(task)
    return {
        name: {
            "texts_per_s": statistics.median(tp for tp, _ in rows),
            "batch_latency_ms": statistics.median(lat for _, lat in rows) * 1e3,
            "runs": runs,
            "per_run_texts_per_s": [round(tp, 1) for tp, _ in rows],
        }
        for name, rows in passes.items()
    }


def torch_pipeline(checkpoint: Path | None, threads: int) -> Callable[[list[str]], Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from stream_app.offline.model.train import resolve_base_model

    torch.set_num_threads(threads)
    source = str(checkpoint) if checkpoint else resolve_base_model("sentence-transformers/all-MiniLM-L6-v2")
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=3).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1, top_k=None)

    def run(texts: list[str]) -> Any:
        with torch.inference_mode():
            return classify(texts, batch_size=len(texts), truncation=True, max_length=128)

    return run


def run_bench(
    model: Path,
    out: Path,
    checkpoint: Path | None,
    runs: int,
    n_texts: int,
    batch_sizes: Sequence[int],
    providers: Sequence[str],
    console: Console,
    torch: bool = True,
) -> dict[str, Any]:
    from stream_app.engine.onnx_classifier import OnnxClassifier

    threads = os.cpu_count() or 1
    texts = tweet_texts(n_texts)
    results: dict[str, Any] = {
        "machine": {"cpus": threads, "platform": platform.platform(), "python": platform.python_version()},
        "texts": len(texts),
        "mean_chars": statistics.mean(len(t) for t in texts),
        "batch_sizes": list(batch_sizes),
        "engines": {},
    }
    engines: dict[str, Callable[[list[str]], Any]] = {}
    for provider in providers:
        classifier = OnnxClassifier(model, provider=provider, intra_op_threads=threads)  # type: ignore[arg-type]
        if provider == "cuda" and classifier.provider != "cuda":
            console.print("no CUDA provider here: skipping the GPU rows")
            continue
        engines[f"onnx-{classifier.provider}-{classifier.precision}"] = classifier.classify
    if torch:
        engines["pytorch-pipeline-fp32"] = torch_pipeline(checkpoint, threads)
    with Progress(console=console) as progress:
        for batch in batch_sizes:
            for name, row in time_interleaved(engines, texts, batch, runs, progress).items():
                results["engines"].setdefault(name, {})[str(batch)] = row
    baseline = results["engines"].get("pytorch-pipeline-fp32")
    results["speedup_vs_pytorch"] = (
        {}
        if baseline is None
        else {
            name: {
                b: statistics.median(
                    mine / theirs
                    for mine, theirs in zip(
                        rows[b]["per_run_texts_per_s"], baseline[b]["per_run_texts_per_s"], strict=True
                    )
                )
                for b in rows
            }
            for name, rows in results["engines"].items()
            if name != "pytorch-pipeline-fp32"
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine_bench.json").write_text(json.dumps(results, indent=2))
    (out / "engine_bench.md").write_text(render_markdown(results))
    console.print(render_markdown(results))
    return results


def _runs(results: dict[str, Any]) -> int:
    first_engine = next(iter(results["engines"].values()))
    return int(next(iter(first_engine.values()))["runs"])


def render_markdown(results: dict[str, Any]) -> str:
    batches = [str(b) for b in results["batch_sizes"]]
    lines = [
        "# Engine benchmark",
        "",
        f"{results['texts']} tweet-length texts (mean {results['mean_chars']:.0f} chars), "
        f"{results['machine']['cpus']} CPUs, median of {_runs(results)} runs.",
        "",
        "| engine | "
        + " | ".join(f"bs={b} texts/s" for b in batches)
        + " | "
        + " | ".join(f"bs={b} batch ms" for b in batches)
        + " |",
        "|---|" + "---:|" * (2 * len(batches)),
    ]
    for name, rows in results["engines"].items():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{rows[b]['texts_per_s']:.1f}" for b in batches)
            + " | "
            + " | ".join(f"{rows[b]['batch_latency_ms']:.1f}" for b in batches)
            + " |"
        )
    lines += [
        "",
        "Speed-up = the median over runs of (engine texts/s ÷ pipeline texts/s) within one run.",
        "",
        "| speed-up vs PyTorch pipeline | " + " | ".join(f"bs={b}" for b in batches) + " |",
        "|---|" + "---:|" * len(batches),
    ]
    for name, ratios in results["speedup_vs_pytorch"].items():
        lines.append(f"| {name} | " + " | ".join(f"{ratios[b]:.2f}×" for b in batches) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch-sizes", default=",".join(map(str, BATCH_SIZES)))
    parser.add_argument("--providers", default="cpu,cuda")
    parser.add_argument("--no-torch", dest="torch", action="store_false", help="Skip the PyTorch pipeline")
    args = parser.parse_args()
    run_bench(
        args.model,
        args.out,
        args.checkpoint,
        args.runs,
        args.texts,
        [int(b) for b in args.batch_sizes.split(",")],
        args.providers.split(","),
        Console(),
        args.torch,
    )


if __name__ == "__main__":
    main()
