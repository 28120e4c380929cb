"""`alerts evaluate|scenarios`: the detector's offline harness (docs/alerting.md)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

alerts_app = typer.Typer(help="Evaluate the spike detector offline.", no_args_is_help=True)
console = Console()


@alerts_app.command("evaluate")
def evaluate_cmd(
    events: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Scored events, one JSON per line")],
    truth: Annotated[Path, typer.Option(exists=True, dir_okay=False, help='{"spikes": [{entity, start, end}]}')],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here")] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="manifest.json from `alerts scenarios`: adds the target figures")
    ] = None,
    score_with: Annotated[
        Path | None,
        typer.Option(exists=True, file_okay=False, help="Model directory: label each event's text with it first"),
    ] = None,
) -> None:
    """Replay scored events through the detector (settings' parameters) and score its alerts.

    With --score-with, the model labels each event's `text` (the end-to-end figure); without
    it, the events' own `label` is used."""
    from stream_app.engine.calibration import Calibration
    from stream_app.offline.evaluate import evaluate
    from stream_app.settings import load_settings
    from stream_app.wiring import detector_params

    floor = Calibration.load(score_with).label_floor if score_with is not None else 0.0
    params = detector_params(load_settings(), floor)
    if manifest is None and (events.parent / "manifest.json").exists():
        manifest = events.parent / "manifest.json"
    report = evaluate(events, truth, params, manifest, score_with)
    table = Table(title=f"detector on {events.name}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = {
        "alerts (firing)": report.alerts,
        "true / false positives": f"{report.true_positives} / {report.false_positives}",
        "precision": f"{report.precision:.3f}",
        "recall": f"{report.recall:.3f} ({report.spikes_detected}/{report.spikes})",
        "median delay": "-"
        if report.median_delay_s is None
        else f"{report.median_delay_s:.0f} s = {report.median_delay_windows} windows",
        "false alerts / entity / day": f"{report.false_alerts_per_entity_per_day:.4f}",
        "entities, days": f"{report.entities}, {report.days}",
    }
    for key in (
        "targeted_recall",
        "targeted_median_delay_min",
        "targeted_recall_by_posts_per_hour",
        "worst_stationary_entity_false_alerts_per_week",
        "worst_entity_false_alerts_per_week",
        "fired_windows_min",
    ):
        if key in report.details:
            rows[key.replace("_", " ")] = str(report.details[key])
    for name, value in rows.items():
        table.add_row(name, str(value))
    console.print(table)
    if "false_alerts_per_entity_per_week_by_kind" in report.details:
        console.print(
            "false alerts / entity / week by scenario:", report.details["false_alerts_per_entity_per_week_by_kind"]
        )
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2))


@alerts_app.command("scenarios")
def scenarios_cmd(
    out: Annotated[Path, typer.Option(help="Directory for events.jsonl, truth.json and manifest.json")],
    days: float = 7.0,
    seed: int = 11,
    small: Annotated[bool, typer.Option(help="Fewer entities, for quick checks and tests")] = False,
    texts: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, help="text,label CSV: give each event a real text of its gold label"),
    ] = None,
) -> None:
    """Generate a labelled scenario suite: noise, cycles, spikes, surges, drifts, a waking entity."""
    from stream_app.offline.scenarios import read_text_pools, write_suite

    pools = read_text_pools(texts) if texts else None
    with console.status("generating scenarios"):
        manifest = write_suite(out, days=days, seed=seed, small=small, texts=pools)
    kinds = dict(Counter(info["kind"] for info in manifest["entities"].values()))
    spikes = sum(len(i["spikes"]) for i in manifest["entities"].values())
    console.print(
        f"{manifest['events']} events, {len(manifest['entities'])} entities {kinds}, {spikes} spikes -> {out}"
    )
