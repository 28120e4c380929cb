"""Paired engine speed of two model directories (the shipped one against a previous one).

Same texts, same machine, the two engines interleaved in every repeat; reports each
repeat's ratio and their median, per batch size (this host's speed drifts, so only
same-run ratios mean much). Each text carries the domain the worker would route it to
(`pipeline/routing.py`: reviews, cashtag posts to finance, the rest social), so a model with
domain heads or a domain prefix is timed as it serves; a one-head model ignores them.

    PYTHONPATH=. .venv/bin/python bench/model_ab.py --a build/old_model --b models/default

`--a-file` / `--b-file` time a given ONNX file instead of the one the engine would derive (the
directory still gives the tokenizer, labels and calibration): e.g. the INT8 file of an older
derivation from `$SM_LOCAL_CACHE/models/<sha>-v2/`, to time a change of the derivation itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from stream_app.engine.onnx_classifier import OnnxClassifier
from stream_app.pipeline.routing import route
from stream_app.testing.generate import generate_stream


def texts_per_s(engine: OnnxClassifier, texts: list[str], domains: list[str], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        engine.classify(texts[i : i + batch], domains[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", type=Path, required=True, help="baseline model directory")
    parser.add_argument("--b", type=Path, default=Path("models/default"))
    parser.add_argument("--a-file", type=Path, default=None, help="ONNX file for a (default: as derived)")
    parser.add_argument("--b-file", type=Path, default=None, help="ONNX file for b (default: as derived)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    records = list(generate_stream(minutes=9, per_minute=60, seed=5))[:512]
    texts = [r["text"] for _, r in records]
    domains = [route("review" if kind == "review" else "post", r["text"], ()) for kind, r in records]
    a = OnnxClassifier(args.a, provider="cpu", model_file=args.a_file)
    b = OnnxClassifier(args.b, provider="cpu", model_file=args.b_file)
    for engine in (a, b):
        engine.classify(texts[:64], domains[:64])  # warm-up
    out: dict[str, object] = {
        "a": str(args.a),
        "b": str(args.b),
        "a_file": str(args.a_file or "derived"),
        "b_file": str(args.b_file or "derived"),
        "n_texts": len(texts),
        "domains": dict(Counter(domains)),
        "a_model": f"{a.info.name} v{a.info.version} heads={list(a.heads)} prefix={a.domain_prefix}",
        "b_model": f"{b.info.name} v{b.info.version} heads={list(b.heads)} prefix={b.domain_prefix}",
    }
    for batch in (32, 64, 128):
        ratios, speeds_a, speeds_b = [], [], []
        for _ in range(args.repeats):
            sa, sb = texts_per_s(a, texts, domains, batch), texts_per_s(b, texts, domains, batch)
            speeds_a.append(sa)
            speeds_b.append(sb)
            ratios.append(sb / sa)
        out[f"bs{batch}"] = {
            "a_texts_per_s_median": round(statistics.median(speeds_a), 1),
            "b_texts_per_s_median": round(statistics.median(speeds_b), 1),
            "b_over_a_median": round(statistics.median(ratios), 3),
            "ratios": [round(r, 3) for r in ratios],
        }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
