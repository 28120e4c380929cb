#!/usr/bin/env bash
# One command for the GPU path: CUDA FP16 engine bench, FP16-vs-FP32 parity, and the spine
# (real model, one worker) on local Kafka and Redis. Writes bench/results/gpu/gpu_bench.json
# with the provider, device name and onnxruntime version.
#
#   bench/gpu.sh [--records N] [--out DIR]
#
# Without a GPU or without onnxruntime-gpu it says so, writes {"status": "no_gpu", ...} and
# exits 0, so it is safe to run anywhere. Needs: the project installed (editable) with
# onnxruntime-gpu in place of onnxruntime, a CUDA driver, Java and Maven for local Kafka.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
RECORDS=20000
OUT=bench/results/gpu
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "usage: bench/gpu.sh [--records N] [--out DIR]" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

set +e
PROBE="$("$PY" bench/gpu_probe.py 2>"$OUT/probe.err")"
STATUS=$?
set -e
if [ "$STATUS" -ne 0 ]; then
  REASON="$(cat "$OUT/probe.err")"
  echo "bench/gpu.sh: no GPU path here: $REASON" >&2
  echo "bench/gpu.sh: nothing benched; run it on a machine with an NVIDIA GPU and onnxruntime-gpu." >&2
  "$PY" - "$OUT/gpu_bench.json" "${PROBE:-{\}}" "$REASON" <<'PYEOF'
import json, sys
out, probe, reason = sys.argv[1], sys.argv[2], sys.argv[3]
json.dump({"status": "no_gpu", "reason": reason, **json.loads(probe or "{}")}, open(out, "w"), indent=2)
PYEOF
  exit 0
fi
echo "bench/gpu.sh: $PROBE"

# 1. Engine: CUDA FP16 with I/O binding (tokenization included), against ONNX CPU INT8.
"$PY" bench/engine_bench.py --providers cuda,cpu --batch-sizes 1,32,64,128,256 --texts 2048 --runs 3 \
  --out "$OUT" --no-torch
# 2. FP16 parity on the GPU against FP32 on the CPU, same texts.
"$PY" - "$OUT/parity.json" <<'PYEOF'
import json, sys
import numpy as np
from stream_app.engine.onnx_classifier import OnnxClassifier
from stream_app.settings import DEFAULT_MODEL_DIR
from bench.engine_bench import tweet_texts
texts = tweet_texts(1024)
gpu = OnnxClassifier(DEFAULT_MODEL_DIR, provider="cuda")
cpu = OnnxClassifier(DEFAULT_MODEL_DIR, provider="cpu", precision="fp32")
assert gpu.provider == "cuda", "CUDA provider did not load"
pg, pc = gpu.probabilities(texts), cpu.probabilities(texts)
parity = {
    "texts": len(texts),
    "max_abs_prob_diff": float(np.abs(pg - pc).max()),
    "label_agreement": float((pg.argmax(1) == pc.argmax(1)).mean()),
}
json.dump(parity, open(sys.argv[1], "w"), indent=2)
print("parity", parity)
PYEOF
# 3. Spine with the real model on the GPU: one worker, msgs/s with tokenization included.
SM_PROVIDER=cuda "$PY" bench/spine_bench.py --null-model --records "$RECORDS" --latency-seconds 10 \
  --json "$OUT/spine_gpu.json"
"$PY" - "$OUT" "$PROBE" <<'PYEOF'
import json, sys
from pathlib import Path
out, probe = Path(sys.argv[1]), json.loads(sys.argv[2])
result = {
    "status": "ok",
    "provider": "CUDAExecutionProvider",
    **probe,
    "engine": json.loads((out / "engine_bench.json").read_text()),
    "parity": json.loads((out / "parity.json").read_text()),
    "spine": json.loads((out / "spine_gpu.json").read_text()),
}
(out / "gpu_bench.json").write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps({k: result[k] for k in ("status", "provider", "device_name", "onnxruntime_version")}))
PYEOF
