"""The test stack's pieces that tests import directly: the repo root, a worker subprocess, and
Settings built from a worker's environment (fixtures in tests/conftest.py hand them out)."""

from __future__ import annotations

from pathlib import Path

from stream_app.settings import Settings, load_settings
from stream_app.testing.processes import ApiProcess, WorkerProcess

REPO = Path(__file__).resolve().parents[2]
__all__ = ["REPO", "ApiProcess", "WorkerProcess", "settings_from"]


def settings_from(env: dict[str, str]) -> Settings:
    overrides = {k[3:].lower(): v for k, v in env.items() if k.startswith("SM_") and k != "SM_LOCAL_CACHE"}
    return load_settings(**overrides)
