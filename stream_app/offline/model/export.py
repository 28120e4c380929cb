"""Export a fine-tuned checkpoint to a self-contained ONNX model directory.

Steps: eager-attention export with dynamic batch and sequence axes, fusion with
onnxruntime's transformer optimizer, INT8 dynamic quantization for CPU, FP16 for GPU,
then parity checks of each precision against PyTorch. Needs the `train` extra.

A domain-heads checkpoint (`config.domains`, one Linear of `3 * heads` outputs) exports as ONE
graph whose `logits` is `[batch, heads, 3]`: a reshape appended after the classifier, so the
encoder runs once per text and the engine picks a row's head with an index, not a second
session. The reshape is added to the exported graph (not by wrapping the PyTorch module), so the
weights keep their PyTorch names, which `warmstart.py` reads back; it sits after everything the
optimizer fuses, so fusion is unchanged. The INT8 file is derived as the engine derives it at load
(`engine.precision.quantize_int8`, outlier channels probed). Parity is checked per head (per domain for a
domain-prefix model, whose texts are read behind each domain's prefix).
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

from stream_app.engine.precision import FP16, FP32, INT8, probe_feeds, quantize_int8, to_fp16
from stream_app.engine.types import DOMAINS, LABELS, with_domain_prefix

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
    domain_prefix: bool | None = None,
) -> ExportResult:
    """`domain_prefix`: whether the checkpoint reads `with_domain_prefix(domain, text)`; `None`
    reads it from the checkpoint's config or, failing that, the run's `train_summary.json`."""
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    heads = [str(h) for h in getattr(model.config, "domains", None) or []]
    prefix = _reads_domain_prefix(checkpoint, model.config) if domain_prefix is None else domain_prefix
    if heads and prefix:
        raise ValueError(f"{checkpoint}: a model has domain heads or a domain prefix, not both")
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
    if heads:
        reshape_to_heads(raw, len(heads))
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
    tokenizer.save_pretrained(str(out))  # first: the INT8 derivation's probe reads it
    quantize_int8(out / FP32, out / INT8, probe=probe_feeds(out))
    to_fp16(out / FP32, out / FP16)

    meta: dict[str, Any] = {"labels": list(LABELS), "name": name, "version": version, "max_length": max_length}
    if heads:
        meta["heads"] = heads
    if prefix:
        meta["domain_prefix"] = True
    (out / "labels.json").write_text(json.dumps(meta, indent=2))
    parity = check_parity(model, tokenizer, out, parity_texts, max_length, heads, prefix)
    (out / "parity.json").write_text(json.dumps(parity, indent=2))
    for precision_file in (FP32, FP16, INT8):
        if precision_file not in keep:
            (out / precision_file).unlink()
    summary = checkpoint.parent / "train_summary.json"
    if summary.exists():
        shutil.copy(summary, out / "train_summary.json")
    from stream_app.offline.model.card import write_card

    write_card(out)
    return ExportResult(out, parity, fused)


def reshape_to_heads(path: Path, heads: int) -> None:
    """Append `Reshape(logits, [-1, heads, 3])` to an exported graph: the `[batch, heads, 3]`
    layout is then fixed in the file, not restated by every caller."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    flat = "logits_flat"
    for node in graph.node:
        node.output[:] = [flat if name == "logits" else name for name in node.output]
    graph.initializer.append(numpy_helper.from_array(np.array([-1, heads, len(LABELS)], dtype=np.int64), "heads_shape"))
    graph.node.append(helper.make_node("Reshape", [flat, "heads_shape"], ["logits"], name="heads_reshape"))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", heads, len(LABELS)]))
    onnx.save(model, str(path))


def _reads_domain_prefix(checkpoint: Path, config: Any) -> bool:
    """The checkpoint's config says so (training records it), or its run's summary does."""
    if getattr(config, "domain_prefix", None) is not None:
        return bool(config.domain_prefix)
    summary = checkpoint.parent / "train_summary.json"
    if summary.exists():
        return bool(json.loads(summary.read_text()).get("config", {}).get("domain_prefix", False))
    return False


def check_parity(
    model: Any,
    tokenizer: Any,
    out: Path,
    texts: Sequence[str],
    max_length: int,
    heads: Sequence[str] = (),
    domain_prefix: bool = False,
) -> dict[str, Any]:
    """FP32 logits within 1e-4 of PyTorch; INT8 and FP16 argmax agree with FP32 on >= 99%, for
    every head (`per_head`; the top-level agreements are the worst head's). A domain-prefix
    model reads each text once behind each domain's prefix and is reported per domain."""
    import onnxruntime as ort
    import torch

    from stream_app.engine.precision import widen_fp16_to_fp32

    groups = list(DOMAINS) if domain_prefix else list(heads) or ["all"]
    inputs = [with_domain_prefix(d, t) for d in DOMAINS for t in texts] if domain_prefix else list(texts)
    encoded = tokenizer(inputs, truncation=True, max_length=max_length, padding=True, return_tensors="np")
    feeds = {k: encoded[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}

    def per_group(logits: Any) -> list[Any]:
        """Each head's (or prefixed domain's) `[n, 3]` logits."""
        if heads:
            return [logits[:, h] for h in range(len(heads))]
        return [logits[g * len(texts) : (g + 1) * len(texts)] for g in range(len(groups))]

    with torch.no_grad():
        reference = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
    if heads:
        reference = reference.reshape(len(reference), len(heads), len(LABELS))

    def run(path: Path) -> Any:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["logits"], feeds)[0].astype(np.float32)

    fp32 = run(out / FP32)
    report: dict[str, Any] = {"n_texts": len(texts)}
    report["fp32_max_abs_logit_diff"] = float(np.abs(fp32 - reference).max())
    int8 = run(out / INT8)
    try:
        fp16_logits = run(out / FP16)
        report["fp16_evaluated_on"] = "CPUExecutionProvider"
    except Exception:  # CPU kernels lack FP16 for fused ops; check the rounded weights instead
        widened = out / "model.fp16-widened.onnx"
        widen_fp16_to_fp32(out / FP16, widened)
        fp16_logits = run(widened)
        widened.unlink()
        report["fp16_evaluated_on"] = "FP16 weights widened to FP32 on CPU (no GPU here)"

    def agreement(a: Any, b: Any) -> float:
        return float((a.argmax(-1) == b.argmax(-1)).mean())

    per_head = {
        name: {
            "fp32_max_abs_logit_diff": float(np.abs(f - r).max()),
            "int8_argmax_agreement": agreement(i, f),
            "fp16_argmax_agreement": agreement(h, f),
        }
        for name, r, f, i, h in zip(
            groups, per_group(reference), per_group(fp32), per_group(int8), per_group(fp16_logits), strict=True
        )
    }
    report["int8_argmax_agreement"] = min(v["int8_argmax_agreement"] for v in per_head.values())
    report["fp16_argmax_agreement"] = min(v["fp16_argmax_agreement"] for v in per_head.values())
    if groups != ["all"]:
        report["per_head"] = per_head
    report["passed"] = (
        report["fp32_max_abs_logit_diff"] <= FP32_TOLERANCE
        and report["int8_argmax_agreement"] >= ARGMAX_AGREEMENT
        and report["fp16_argmax_agreement"] >= ARGMAX_AGREEMENT
    )
    return report
