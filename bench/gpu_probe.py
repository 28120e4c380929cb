"""What `bench/gpu.sh` records before benching: provider, device, onnxruntime version.

Exits 3 with a clear message when onnxruntime offers no CUDA provider or no GPU is visible,
so the script falls back instead of benching the CPU under a GPU label.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys


def probe() -> dict[str, object]:
    import onnxruntime as ort

    info: dict[str, object] = {
        "onnxruntime_version": ort.__version__,
        "available_providers": ort.get_available_providers(),
        "device_name": None,
    }
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            info["device_name"] = out.stdout.strip().splitlines()[0]
    return info


def main() -> None:
    info = probe()
    print(json.dumps(info))
    if "CUDAExecutionProvider" not in info["available_providers"]:  # type: ignore[operator]
        print(
            "no CUDAExecutionProvider in this onnxruntime (install onnxruntime-gpu in place of onnxruntime)",
            file=sys.stderr,
        )
        sys.exit(3)
    if info["device_name"] is None:
        print("onnxruntime-gpu is installed but nvidia-smi sees no GPU", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
