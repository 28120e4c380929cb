"""The `sentiment-monitor` command: `main` builds the Typer app from its sub-commands."""

from stream_app.cli.main import app, main
from stream_app.logs import setup_logging

__all__ = ["app", "main", "setup_logging"]
