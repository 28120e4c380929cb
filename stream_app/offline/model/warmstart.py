"""Rebuild a PyTorch checkpoint from a shipped ONNX model, so training can continue from it.

Why: the project commits the exported model (FP16 ONNX), not the PyTorch checkpoint it came
from, and a new recipe (model v3's domain heads) is far cheaper on 2 cores when it starts from
the shipped encoder than from the base weights. The fused graph keeps every weight: the
embeddings, LayerNorms, biases, pooler and classifier by their PyTorch names; each layer's
query/key/value as one `Attention` weight (`[hidden, 3 * hidden]`, columns q | k | v); and three
anonymous MatMuls per layer in graph order (attention output, intermediate, output), stored
transposed. FP16 rounding is the only loss (checked against the ONNX logits by `verify`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stream_app.engine.precision import FP16, widen_fp16_to_fp32


def _initializers(path: Path) -> tuple[dict[str, Any], list[Any]]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in model.graph.initializer}
    return weights, list(model.graph.node)


def state_dict_from_onnx(path: Path, layers: int) -> dict[str, Any]:
    """PyTorch `BertForSequenceClassification` state-dict entries (numpy) from a fused graph."""
    weights, nodes = _initializers(path)
    state = {name: value for name, value in weights.items() if name.startswith(("bert.", "classifier."))}
    attention = [n for n in nodes if n.op_type == "Attention"]
    matmuls = [n for n in nodes if n.op_type == "MatMul" and n.input[1] in weights]
    if len(attention) != layers or len(matmuls) != 3 * layers:
        raise ValueError(f"{path}: expected {layers} fused layers, found {len(attention)} and {len(matmuls)} MatMuls")
    for layer, node in enumerate(attention):
        qkv, qkv_bias = weights[node.input[1]], weights[node.input[2]]
        hidden = qkv.shape[0]
        prefix = f"bert.encoder.layer.{layer}.attention.self"
        for index, part in enumerate(("query", "key", "value")):
            state[f"{prefix}.{part}.weight"] = qkv[:, index * hidden : (index + 1) * hidden].T.copy()
            state[f"{prefix}.{part}.bias"] = qkv_bias[index * hidden : (index + 1) * hidden].copy()
        names = ("attention.output.dense", "intermediate.dense", "output.dense")
        for name, matmul in zip(names, matmuls[3 * layer : 3 * layer + 3], strict=True):
            state[f"bert.encoder.layer.{layer}.{name}.weight"] = weights[matmul.input[1]].T.copy()
    return state


def checkpoint_from_onnx(model_dir: Path, base_dir: str, out: Path) -> Path:
    """Write a Hugging Face checkpoint (base config and tokenizer, shipped weights) to `out`."""
    import torch
    from transformers import AutoTokenizer

    from stream_app.offline.model.train import new_classifier

    model = new_classifier(base_dir)
    state = state_dict_from_onnx(model_dir / FP16, model.config.num_hidden_layers)
    expected = {k for k in model.state_dict() if not k.endswith("position_ids")}
    missing = expected - set(state)
    if missing:
        raise ValueError(f"weights missing from {model_dir / FP16}: {sorted(missing)[:5]}")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base_dir, use_fast=True).save_pretrained(out)
    return out


def verify(model_dir: Path, checkpoint: Path, texts: list[str]) -> float:
    """Largest |logit| difference between the rebuilt checkpoint and the ONNX graph it came from."""
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    encoded = tokenizer(texts, padding=True, return_tensors="np")
    feeds = {k: encoded[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    widened = checkpoint / "reference.fp32.onnx"
    widen_fp16_to_fp32(model_dir / FP16, widened)
    try:
        session = ort.InferenceSession(str(widened), providers=["CPUExecutionProvider"])
        reference = session.run(["logits"], feeds)[0]
    finally:
        widened.unlink()
    with torch.no_grad():
        rebuilt = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
    return float(np.abs(rebuilt - reference).max())
