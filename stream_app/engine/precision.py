"""Derive the precision a provider wants from the one precision a model directory ships.

The default model is committed as FP16 (the GPU precision, under 50 MB). The CPU path
wants INT8: we widen FP16 back to FP32 and quantize dynamically, once, into a cache
keyed by the source file's hash. Uses only `onnx` and `onnxruntime`, never torch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from stream_app.settings import local_cache_dir

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

FP32, FP16, INT8 = "model.fp32.onnx", "model.fp16.onnx", "model.int8.onnx"
# Part of the cache key: bump it when the derivation changes, so old caches are not served.
DERIVATION_VERSION = 2


def cache_root() -> Path:
    return local_cache_dir() / "models"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()[:16]


def widen_fp16_to_fp32(src: Path, dst: Path) -> None:
    """Every FP16 tensor, cast and type annotation becomes FP32; the graph is otherwise unchanged."""
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    for index, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT16:
            widened = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name)
            graph.initializer[index].CopyFrom(widened)
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT16:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float32)))
    for value in [*graph.value_info, *graph.input, *graph.output]:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    onnx.save(model, str(dst))


def split_skip_layer_norm(model: onnx.ModelProto) -> int:
    """Rewrite each single-output SkipLayerNormalization as Add (+ Add bias) + LayerNormalization.

    Why: onnxruntime's CPU SkipLayerNormalization kernel is about 5x slower than the standard
    LayerNormalization kernel on the same tensor (measured with onnxruntime 1.32 on 2 AMD EPYC
    cores, batch 32 x 16 tokens x 384: 0.52 ms against 0.10 ms), which made it 20% of the INT8
    forward pass. The rewrite is exact in FP32. Only CPU files get it; CUDA keeps the fused op.
    Returns how many nodes were rewritten.
    """
    from onnx import helper

    if next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0) < 17:
        return 0  # LayerNormalization is an ONNX op from opset 17 on
    nodes, rewritten = [], 0
    for node in model.graph.node:
        outputs = [name for name in node.output if name]
        if node.op_type != "SkipLayerNormalization" or len(outputs) != 1:
            nodes.append(node)
            continue
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        x, skip, gamma, beta, *rest = node.input
        total = f"{node.output[0]}/skip_sum"
        nodes.append(helper.make_node("Add", [x, skip], [total], name=f"{node.name}/add"))
        if rest and rest[0]:
            nodes.append(helper.make_node("Add", [total, rest[0]], [f"{total}_bias"], name=f"{node.name}/bias"))
            total = f"{total}_bias"
        nodes.append(
            helper.make_node(
                "LayerNormalization", [total, gamma, beta], [node.output[0]], name=node.name, axis=-1, epsilon=epsilon
            )
        )
        rewritten += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return rewritten


class _BelowWarningFromRoot(logging.Filter):
    """onnxruntime's quantizer logs one INFO line per node on the root logger (`logging.info`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name != "root"


@contextmanager
def quiet_quantizer() -> Iterator[None]:
    """Drop the quantizer's root-logger INFO lines while it runs; our own loggers are untouched."""
    root = logging.getLogger()
    quiet = _BelowWarningFromRoot()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def quantize_int8(src_fp32: Path, dst: Path, split_layer_norm: bool = True) -> None:
    """Dynamic per-channel INT8 weights for the CPU provider, then the CPU-only graph rewrite
    (`split_layer_norm=False` keeps the fused op, for `bench/layernorm_split.py`)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet_quantizer():
        quantize_dynamic(
            str(src_fp32),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    if not split_layer_norm:
        return
    model = onnx.load(str(dst))
    if split_skip_layer_norm(model):
        onnx.save(model, str(dst))


def to_fp16(src_fp32: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src_fp32)), keep_io_types=True)
    onnx.save(model, str(dst))


def resolve_model_file(model_dir: Path, precision: str) -> Path:
    """The file for `precision` ('int8', 'fp16' or 'fp32'), derived and cached when absent."""
    wanted = {"int8": INT8, "fp16": FP16, "fp32": FP32}[precision]
    if (model_dir / wanted).exists():
        return model_dir / wanted
    source = next((model_dir / n for n in (FP32, FP16, INT8) if (model_dir / n).exists()), None)
    if source is None:
        from stream_app.errors import ModelError

        raise ModelError(
            f"{model_dir} holds no model.{{fp32,fp16,int8}}.onnx",
            setting="SM_MODEL_DIR",
            hint="point it at a model directory or unset it for the shipped model",
        )
    cache = cache_root() / f"{_digest(source)}-v{DERIVATION_VERSION}"
    target = cache / wanted
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    what = "the CPU file (INT8)" if precision == "int8" else f"the {precision.upper()} file"
    log.info("deriving %s from %s into %s: once, about a minute", what, source.name, cache)
    fp32 = source if source.name == FP32 else cache / FP32
    if source.name == FP16 and not fp32.exists():
        widen_fp16_to_fp32(source, fp32)
    if source.name == INT8:
        from stream_app.errors import ModelError

        raise ModelError("an INT8-only model directory cannot derive other precisions")
    if precision == "fp32":
        return fp32
    partial = target.with_suffix(".partial")
    if precision == "int8":
        quantize_int8(fp32, partial)
    elif precision == "fp16":
        to_fp16(fp32, partial)
    partial.replace(target)
    return target
