"""A/B of the CPU graph rewrite: the INT8 file with onnxruntime's fused SkipLayerNormalization
against the same file with it split into Add + LayerNormalization (what the engine loads).

Both variants run through the same `OnnxClassifier` on the same tweet-length texts, one pass
each, back to back, so the host's slow stretches hit both alike; reports the median per-run
ratio per batch size.

    PYTHONPATH=. python bench/layernorm_split.py --model models/default
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import onnx
from rich.console import Console
from rich.progress import track

from bench.engine_bench import one_pass, tweet_texts
from stream_app.engine.onnx_classifier import OnnxClassifier
from stream_app.engine.precision import quantize_int8, resolve_model_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--batch-sizes", default="8,32,128")
    args = parser.parse_args()
    console = Console()
    texts = tweet_texts(512)
    split = OnnxClassifier(args.model, provider="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        fused_file = Path(tmp) / "model.int8.fused.onnx"
        quantize_int8(resolve_model_file(args.model, "fp32"), fused_file, split_layer_norm=False)
        fused_ops = {node.op_type for node in onnx.load(str(fused_file)).graph.node}
        assert "SkipLayerNormalization" in fused_ops, "nothing to split in this model"
        fused = OnnxClassifier(args.model, provider="cpu", precision="int8", model_file=fused_file)
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        split.classify(texts[:batch])
        fused.classify(texts[:batch])
        ratios = []
        for _ in track(range(args.runs), description=f"bs={batch}", console=console):
            before = one_pass(fused.classify, texts, batch)[0]
            after = one_pass(split.classify, texts, batch)[0]
            ratios.append(after / before)
        console.print(f"bs={batch}: split/fused texts/s, median of {args.runs} runs: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
