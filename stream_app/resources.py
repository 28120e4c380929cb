"""Files the service ships besides its code: the default model, the demo watch-list, the Kafka pom.

In a checkout (and an editable install) they are read where they live in the repository:
`models/default/`, `deploy/watchlist/demo.yaml`, `deploy/kafka/pom.xml`. A built wheel
carries copies under `stream_app/_data/` (put there by `setup.py`'s build step, never kept in
git), and those win when present, so an installed package never looks outside site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "_data"
REPO_ROOT = PACKAGE_DIR.parent

# name in the wheel (under stream_app/_data/) -> path in the repository
SHIPPED = {
    "models/default": "models/default",
    "watchlist/demo.yaml": "deploy/watchlist/demo.yaml",
    "kafka/pom.xml": "deploy/kafka/pom.xml",
}


def _resolve(name: str) -> Path:
    packaged = DATA_DIR / name
    return packaged if packaged.exists() else REPO_ROOT / SHIPPED[name]


def local_cache_dir() -> Path:
    """`SM_LOCAL_CACHE`: Kafka jars and derived model precisions. Read here only, and at call time,
    because the model cache and the dev launchers need it without a full Settings."""
    return Path(os.environ.get("SM_LOCAL_CACHE") or Path.home() / ".cache" / "sentiment-monitor")


def default_model_dir() -> Path:
    """The default model directory; `SM_MODEL_DIR` overrides it (see settings.py)."""
    return _resolve("models/default")


def demo_watchlist() -> Path:
    """The demo's watch-list of fictional brands and tickers."""
    return _resolve("watchlist/demo.yaml")


def kafka_pom() -> Path:
    """The Maven pom that fetches a local Kafka broker's jars for `dev up` and the demo."""
    return _resolve("kafka/pom.xml")


def version() -> str:
    """The installed distribution's version, else the checkout's pyproject.toml version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("sentiment-monitor")
    except PackageNotFoundError:
        import tomllib

        pyproject = REPO_ROOT / "pyproject.toml"
        if pyproject.is_file():
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        return "unknown"
