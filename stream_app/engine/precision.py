"""Derive the precision a provider wants from the one precision a model directory ships.

The default model is committed as FP16 (the GPU precision, under 50 MB). The CPU path
wants INT8: we widen FP16 back to FP32 and quantize dynamically, once, into a cache
keyed by the source file's hash. Uses only `onnx`, `onnxruntime` and `tokenizers`, never torch.

What stays FP32 in the CPU file (derivation 3), and why. Dynamic quantization gives each
activation tensor one uint8 scale per batch, set by its largest value. The input of each
feed-forward output projection (the GELU output, 1536 channels in MiniLM) has one or two
"massive" channels: in v3's first layers they reach 14-24 while every other channel stays below
about 7 (median 0.11), so one scale for the whole tensor was as coarse as the typical value and
the INT8 file disagreed with FP32 on 3.6 % of TweetEval rows. `split_outlier_channels` moves the
`OUTLIER_CHANNELS` largest input channels of each such projection (found by running the FP32 graph
on the fixed `PROBE_TEXTS`, no data set) to a small FP32 side product and quantizes the rest as
before: about 1 % more forward time for the accuracy of keeping those projections FP32 whole.
The pooler and classifier (`Gemm`, the last two products before the logits) also stay FP32: cheap,
though they did not move agreement measurably by themselves.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from stream_app.resources import local_cache_dir

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import onnx

log = logging.getLogger(__name__)

FP32, FP16, INT8 = "model.fp32.onnx", "model.fp16.onnx", "model.int8.onnx"
# Part of the cache key: bump it when the derivation changes, so old caches are not served.
DERIVATION_VERSION = 3
# Per feed-forward output projection: how many of its input channels stay FP32 (see above).
OUTLIER_CHANNELS = 4
GELU_OPS = frozenset({"Gelu", "BiasGelu", "FastGelu"})
# Fixed probe for `split_outlier_channels`: the massive channels belong to the weights, not to the
# text, so any handful of ordinary sentences of each domain finds them (one padded batch, as served).
PROBE_TEXTS = (
    "I love this so much, best day ever!",
    "worst customer service I have ever had, two hours on hold",
    "the meeting was moved to Thursday at 3pm",
    "can't believe the game last night... what a finish",
    "@united my flight got cancelled again and nobody at the desk knows anything",
    "just finished reading the new book, not sure how I feel about the ending",
    "Happy birthday to my little sister!! so proud of you",
    "traffic on the bridge is terrible this morning",
    "$AAPL up 3% after earnings beat estimates",
    "$TSLA shares slide as deliveries miss expectations",
    "The company reported quarterly revenue of 2.1 billion dollars.",
    "Fed leaves rates unchanged, markets flat",
    "a gripping, beautifully acted film that stays with you",
    "the plot is thin and the jokes fall flat",
    "The battery lasts all day and the screen is great.",
    "Stopped working after a week. Do not buy.",
    "it's fine, nothing special",
    "new video is up on the channel, link in bio",
    "why is everything so expensive lately",
    "thank you all for the kind messages",
)


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


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def probe_feeds(model_dir: Path) -> dict[str, npt.NDArray[np.int64]] | None:
    """`PROBE_TEXTS` as one padded batch by the directory's tokenizer (None without one)."""
    import numpy as np
    from tokenizers import Tokenizer

    path = model_dir / "tokenizer.json"
    if not path.exists():
        return None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(128)
    encodings = tokenizer.encode_batch(list(PROBE_TEXTS))
    width = max(len(e.ids) for e in encodings)
    feeds = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUTS}
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        feeds["input_ids"][row, :n] = encoding.ids
        feeds["attention_mask"][row, :n] = encoding.attention_mask
        feeds["token_type_ids"][row, :n] = encoding.type_ids
    return feeds


def _feed_forward_outputs(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The feed-forward output projections: MatMuls of a GELU output by a constant weight."""
    made_by = {out: node.op_type for node in model.graph.node for out in node.output}
    weights = {init.name for init in model.graph.initializer}
    return [
        node
        for node in model.graph.node
        if node.op_type == "MatMul" and made_by.get(node.input[0]) in GELU_OPS and node.input[1] in weights
    ]


def split_outlier_channels(
    model: onnx.ModelProto, feeds: Mapping[str, npt.NDArray[np.int64]], channels: int = OUTLIER_CHANNELS
) -> list[str]:
    """Rewrite each feed-forward output projection `Y = X @ W` as
    `(X * mask) @ W + Gather(X, outliers) @ W[outliers]`, where `outliers` are the `channels` input
    channels of largest |X| on `feeds` and `mask` zeroes them. Exact in FP32; the first product is
    quantized as before (its scale no longer set by the outliers), the second stays FP32. Returns
    the names of the nodes the quantizer must leave alone."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    targets = _feed_forward_outputs(model)
    if not targets:
        return []
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for node in targets:
        probe.graph.output.append(helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    activations = session.run([n.input[0] for n in targets], {k: v for k, v in feeds.items() if k in wanted})
    weights = {init.name: init for init in model.graph.initializer}
    rewritten: dict[str, list[onnx.NodeProto]] = {}
    keep: list[str] = []
    for node, x in zip(targets, activations, strict=True):
        weight = numpy_helper.to_array(weights[node.input[1]])
        width = weight.shape[0]
        if channels <= 0 or 2 * channels > width:
            continue
        peak = np.abs(x.reshape(-1, width)).max(axis=0)
        outliers = np.sort(np.argsort(-peak, kind="stable")[:channels]).astype(np.int64)
        mask = np.ones(width, dtype=np.float32)
        mask[outliers] = 0.0
        name, (inp, out) = node.name or node.output[0], (node.input[0], node.output[0])
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(mask, f"{name}/inlier_mask"),
                numpy_helper.from_array(outliers, f"{name}/outlier_index"),
                numpy_helper.from_array(weight[outliers].astype(np.float32), f"{name}/outlier_weight"),
            ]
        )
        rewritten[node.name] = [
            helper.make_node("Mul", [inp, f"{name}/inlier_mask"], [f"{name}/inlier_x"], name=f"{name}/inlier"),
            helper.make_node("MatMul", [f"{name}/inlier_x", node.input[1]], [f"{name}/inlier_y"], name=node.name),
            helper.make_node(
                "Gather", [inp, f"{name}/outlier_index"], [f"{name}/outlier_x"], name=f"{name}/outlier_gather", axis=-1
            ),
            helper.make_node(
                "MatMul",
                [f"{name}/outlier_x", f"{name}/outlier_weight"],
                [f"{name}/outlier_y"],
                name=f"{name}/outlier_matmul",
            ),
            helper.make_node("Add", [f"{name}/inlier_y", f"{name}/outlier_y"], [out], name=f"{name}/outlier_add"),
        ]
        keep += [f"{name}/outlier_gather", f"{name}/outlier_matmul"]
    nodes = [new for node in model.graph.node for new in rewritten.get(node.name, [node])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return keep


def quantize_int8(
    src_fp32: Path,
    dst: Path,
    split_layer_norm: bool = True,
    probe: Mapping[str, npt.NDArray[np.int64]] | None = None,
) -> None:
    """Dynamic per-channel INT8 weights for the CPU provider, then the CPU-only graph rewrite
    (`split_layer_norm=False` keeps the fused op, for `bench/layernorm_split.py`). With `probe`
    (`probe_feeds`), each feed-forward output projection's outlier channels stay FP32
    (`split_outlier_channels`); the pooler and classifier always do."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src_fp32))
    keep = split_outlier_channels(model, probe) if probe is not None else []
    # The pooler and classifier are Gemms; the quantizer renames a Gemm NAME to NAME_MatMul
    # before it reads the exclusions (onnxruntime >= 1.2x), so both names are given.
    gemms = [node.name for node in model.graph.node if node.op_type == "Gemm" and node.name]
    keep += [*gemms, *(f"{name}_MatMul" for name in gemms)]
    source = src_fp32
    if probe is not None:
        source = dst.with_name(dst.name + ".split.onnx")
        onnx.save(model, str(source))
    try:
        with quiet_quantizer():
            quantize_dynamic(
                str(source),
                str(dst),
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=keep,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        if source != src_fp32:
            source.unlink(missing_ok=True)
    if not split_layer_norm:
        return
    quantized = onnx.load(str(dst))
    if split_skip_layer_norm(quantized):
        onnx.save(quantized, str(dst))


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
        quantize_int8(fp32, partial, probe=probe_feeds(model_dir))
    elif precision == "fp16":
        to_fp16(fp32, partial)
    partial.replace(target)
    return target
