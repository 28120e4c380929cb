"""INT8 against FP32, per head: how often the CPU file's argmax equals the FP32 graph's.

    PYTHONPATH=. python bench/int8_agreement.py --model models/default \\
        --texts ../shared/data/tweeteval_val.csv --texts build/holdout/financial_tweets_train_holdout.csv \\
        --texts ../shared/data/sst2_dev.csv --json OUT

The INT8 file is the one the engine serves on CPU (`resolve_model_file(model, "int8")`, derived
and cached as at load); the reference is the FP32 graph it was derived from (the FP16 file widened
when no FP32 file ships). Raw logits, no calibration: agreement is a property of the
quantization, not of the decision rule. Each labelled file is read by its own domain's head
(`domain_of_file`), and 300 synthetic posts by every head. Issue 22's target: ≥ 0.99 per head.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from stream_app.engine.precision import FP16, FP32, resolve_model_file, widen_fp16_to_fp32
from stream_app.offline.model.data import domain_of_file, read_labelled_csv
from stream_app.resources import local_cache_dir
from stream_app.testing.generate import generate_stream

Logits = npt.NDArray[np.float32]


def reference_file(model: Path) -> Path:
    if (model / FP32).exists():
        return model / FP32
    widened = local_cache_dir() / "int8-agreement" / f"{model.resolve().name}-widened.onnx"
    if not widened.exists():
        widened.parent.mkdir(parents=True, exist_ok=True)
        widen_fp16_to_fp32(model / FP16, widened)
    return widened


def logits(path: Path, tokenizer: Tokenizer, texts: list[str], batch: int = 64) -> Logits:
    """`[n, heads, 3]` (a one-head graph's `[n, 3]` gets a heads axis of 1)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(texts), batch):
        encodings = tokenizer.encode_batch(texts[i : i + batch])
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        out.append(session.run(["logits"], feeds)[0])
    stacked: Logits = np.concatenate(out)
    return stacked if stacked.ndim == 3 else stacked[:, None, :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--texts", type=Path, action="append", default=[], help="a labelled CSV, repeatable")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    heads = json.loads((args.model / "labels.json").read_text()).get("heads") or ["all"]
    tokenizer = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    tokenizer.enable_truncation(128)
    tokenizer.enable_padding()
    fp32, int8 = reference_file(args.model), resolve_model_file(args.model, "int8")
    sets: dict[str, tuple[list[str], str | None]] = {
        "synthetic_300": ([r["text"] for _, r in generate_stream(minutes=6, per_minute=60, seed=99)][:300], None)
    }
    for path in args.texts:
        examples, _ = read_labelled_csv(path)
        sets[path.stem] = ([e.text for e in examples], domain_of_file(path))
    report: dict[str, object] = {"model": str(args.model), "reference": fp32.name, "int8": str(int8)}
    for name, (texts, domain) in sets.items():
        a, b = logits(fp32, tokenizer, texts), logits(int8, tokenizer, texts)
        agree = (a.argmax(-1) == b.argmax(-1)).mean(axis=0)
        chosen = [h for h in heads if domain is None or h == domain or h == "all"]
        report[name] = {"n": len(texts), **{h: round(float(agree[heads.index(h)]), 4) for h in chosen}}
        print(name, report[name], flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
