"""Export a fine-tuned checkpoint to a self-contained ONNX model directory.

Steps: eager-attention export with dynamic batch and sequence axes, fusion with
onnxruntime's transformer optimizer, INT8 dynamic quantization for CPU, FP16 for GPU,
then parity checks of each precision against PyTorch. Needs the `train` extra.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stream_app.engine.precision import FP16, FP32, INT8, quantize_int8, to_fp16
from stream_app.engine.types import LABELS

log = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-4
ARGMAX_AGREEMENT = 0.99


@dataclass(frozen=True)
class ExportResult:
    out: Path
    parity: dict[str, Any]
    fused_ops: dict[str, int]

    @property
    def passed(self) -> bool:
        return bool(self.parity["passed"])


def export_model(
    checkpoint: Path,
    out: Path,
    parity_texts: Sequence[str],
    name: str = "sentiment-minilm",
    version: str = "1.0.0",
    max_length: int = 128,
    keep: Sequence[str] = (FP32, FP16, INT8),
) -> ExportResult:
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    sample = tokenizer(["a short one", "and a rather longer sentence to export"], padding=True, return_tensors="pt")
    raw = out / "model.raw.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(
            model,
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(raw),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    config = model.config
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    fused = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    optimized.save_model_to_file(str(out / FP32))
    raw.unlink()
    quantize_int8(out / FP32, out / INT8)
    to_fp16(out / FP32, out / FP16)

    tokenizer.save_pretrained(str(out))
    (out / "labels.json").write_text(
        json.dumps(
            {"labels": list(LABELS), "name": name, "version": version, "max_length": max_length},
            indent=2,
        )
    )
    parity = check_parity(model, tokenizer, out, parity_texts, max_length)
    (out / "parity.json").write_text(json.dumps(parity, indent=2))
    for precision_file in (FP32, FP16, INT8):
        if precision_file not in keep:
            (out / precision_file).unlink()
    summary = checkpoint.parent / "train_summary.json"
    if summary.exists():
        shutil.copy(summary, out / "train_summary.json")
    from stream_app.model.card import write_card

    write_card(out)
    return ExportResult(out, parity, fused)


def check_parity(model: Any, tokenizer: Any, out: Path, texts: Sequence[str], max_length: int) -> dict[str, Any]:
    """FP32 logits within 1e-4 of PyTorch; INT8 and FP16 argmax agree with FP32 on >= 99%."""
    import onnxruntime as ort
    import torch

    from stream_app.engine.precision import widen_fp16_to_fp32

    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="np")
    feeds = {k: encoded[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        reference = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()

    def run(path: Path) -> Any:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["logits"], feeds)[0].astype(np.float32)

    fp32 = run(out / FP32)
    report: dict[str, Any] = {"n_texts": len(texts)}
    report["fp32_max_abs_logit_diff"] = float(np.abs(fp32 - reference).max())
    report["int8_argmax_agreement"] = float((run(out / INT8).argmax(1) == fp32.argmax(1)).mean())
    try:
        fp16_logits = run(out / FP16)
        report["fp16_evaluated_on"] = "CPUExecutionProvider"
    except Exception:  # CPU kernels lack FP16 for fused ops; check the rounded weights instead
        widened = out / "model.fp16-widened.onnx"
        widen_fp16_to_fp32(out / FP16, widened)
        fp16_logits = run(widened)
        widened.unlink()
        report["fp16_evaluated_on"] = "FP16 weights widened to FP32 on CPU (no GPU here)"
    report["fp16_argmax_agreement"] = float((fp16_logits.argmax(1) == fp32.argmax(1)).mean())
    report["passed"] = (
        report["fp32_max_abs_logit_diff"] <= FP32_TOLERANCE
        and report["int8_argmax_agreement"] >= ARGMAX_AGREEMENT
        and report["fp16_argmax_agreement"] >= ARGMAX_AGREEMENT
    )
    return report
