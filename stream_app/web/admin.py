"""`POST /admin/model`: the HTTP side of a live model swap (the swap itself: stream_app/engine/swap.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from stream_app.engine.swap import ModelSwapper, SwapFailed, info_labels


async def swap_model(swapper: ModelSwapper, body: bytes) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for a request body `{"model_dir": "<path>"}`. Framework-free, so tests
    need no server; the route and the token check are in stream_app/web/routes.py."""
    try:
        payload = orjson.loads(body or b"null")
    except orjson.JSONDecodeError as exc:
        return 400, {"error": f"body is not JSON: {exc}"}
    if not isinstance(payload, dict) or not isinstance(payload.get("model_dir"), str) or not payload["model_dir"]:
        return 400, {"error": 'expected {"model_dir": "<path>"}'}
    try:
        info = await swapper.swap(Path(payload["model_dir"]))
    except SwapFailed as failed:
        return failed.status, {
            "error": failed.reason,
            "active": info_labels(swapper.runner.classifier.info, swapper.model_dir),
        }
    return 200, {"active": info_labels(info, swapper.model_dir)}
