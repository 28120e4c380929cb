"""Build hook: copy the files the service needs at run time into the wheel.

`pyproject.toml` holds all metadata; this file only adds one step to `build_py`. The default
model (`models/default/`), the demo watch-list and the Kafka pom live outside the package in
the repository; a wheel gets copies under `stream_app/_data/`, which `stream_app.resources`
prefers when present. Editable installs skip the copy and read the checkout itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Keep in step with stream_app/resources.py (SHIPPED).
SHIPPED = {
    "models/default": "models/default",
    "watchlist/demo.yaml": "deploy/watchlist/demo.yaml",
    "kafka/pom.xml": "deploy/kafka/pom.xml",
}


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target_root = Path(self.build_lib) / "stream_app" / "_data"
        for name, source in SHIPPED.items():
            src, dst = ROOT / source, target_root / name
            if not src.exists():
                raise FileNotFoundError(f"{src} is missing: a wheel without it would not run")
            if src.is_dir():
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(src, dst)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            self.announce(f"shipping {source} as stream_app/_data/{name}", level=2)


setup(cmdclass={"build_py": BuildWithData})
