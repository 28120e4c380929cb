"""`model train|evaluate|export|split|bench`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from stream_app.engine.types import DOMAINS
from stream_app.offline.model.data import domain_of_file, read_labelled_csv, split_holdout, write_labelled_csv
from stream_app.offline.model.metrics import Report, decide, score_predictions

if TYPE_CHECKING:
    from stream_app.engine.calibration import Calibration

model_app = typer.Typer(help="Train, evaluate, export and benchmark the classifier.", no_args_is_help=True)
console = Console()


@model_app.command("train")
def train_cmd(
    data: Annotated[list[Path], typer.Option(help="text,label CSV; repeat for several")],
    out: Annotated[Path, typer.Option(help="Output dir; the best checkpoint goes to OUT/checkpoint")],
    base: str = "sentence-transformers/all-MiniLM-L6-v2",
    seed: int = 13,
    epochs: float = 1.0,
    batch_size: int = 32,
    learning_rate: float = 8e-5,
    max_length: int = 96,
    holdout_fraction: float = 0.1,
    max_minutes: float | None = None,
) -> None:
    """Fine-tune a BERT-family checkpoint into a negative/neutral/positive classifier."""
    from stream_app.offline.model.train import TrainConfig, train

    config = TrainConfig(
        data=data,
        out=out,
        base=base,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_length=max_length,
        holdout_fraction=holdout_fraction,
        max_minutes=max_minutes,
    )
    console.print(train(config)["best"])


def _print_report(stem: str, report: Report) -> None:
    table = Table(title=f"{stem}: n={report.n}  accuracy={report.accuracy:.4f}  macro-F1={report.macro_f1:.4f}")
    table.add_column("class")
    for column in ("precision", "recall", "f1", "support"):
        table.add_column(column, justify="right")
    for label, row in report.per_class.items():
        table.add_row(
            label, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", str(int(row["support"]))
        )
    console.print(table)
    confusion = Table(title="confusion (rows: gold, columns: predicted)")
    confusion.add_column("")
    for label in report.labels:
        confusion.add_column(label, justify="right")
    for label, counts in zip(report.labels, report.confusion, strict=True):
        confusion.add_row(label, *(str(v) for v in counts))
    console.print(confusion)


class Domain(StrEnum):
    """The heads a command can name (`engine.types.DOMAINS`), as a choice for the CLI."""

    social = "social"
    finance = "finance"
    reviews = "reviews"


@model_app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path, typer.Option(help="Model directory")],
    data: Annotated[list[Path], typer.Option(help="text,label CSV; repeat for several")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics as JSON")] = None,
    limit: Annotated[int | None, typer.Option(help="Score only the first N rows of each file")] = None,
    domain: Annotated[
        Domain | None,
        typer.Option(
            help="Score every file with this domain's head; default: each file's own domain "
            "(stream_app.offline.model.data.DOMAIN_OF_FILE)",
        ),
    ] = None,
    provider: str = "cpu",
) -> None:
    """Accuracy, per-class P/R/F1, macro-F1 and confusion. On binary files the decision
    is positive vs negative: whichever has the higher probability, neutral ignored.
    Each file is scored by one head (its domain's) with that head's calibration."""
    from stream_app.engine.onnx_classifier import OnnxClassifier

    classifier = OnnxClassifier(model, provider=provider)  # type: ignore[arg-type]
    results: dict[str, dict[str, object]] = {}
    for path in data:
        all_examples, binary = read_labelled_csv(path)
        examples = all_examples[:limit] if limit else all_examples
        head = domain.value if domain else domain_of_file(path)
        probs = (
            np.concatenate(
                [
                    classifier.probabilities(
                        [e.text for e in examples[i : i + 256]], [head] * len(examples[i : i + 256])
                    )
                    for i in range(0, len(examples), 256)
                ]
            )
            if examples
            else np.zeros((0, 3), dtype=np.float32)
        )
        gold = np.array([e.label for e in examples], dtype=np.int64)
        decisions = decide(probs, binary, classifier.calibrations[head].offsets)
        report = score_predictions(gold, decisions, [0, 2] if binary else [0, 1, 2])
        _print_report(f"{path.stem} ({head} head)", report)
        results[path.stem] = {**report.as_json(), "binary": binary, "domain": head}
    if json_out:
        json_out.write_text(
            json.dumps(
                {
                    "model": str(model),
                    "name": classifier.info.name,
                    "version": classifier.info.version,
                    "heads": list(classifier.heads),
                    "domain_prefix": classifier.domain_prefix,
                    "provider": classifier.provider,
                    "precision": classifier.precision,
                    "mean_macro_f1": _mean_f1(results.values()),
                    "per_domain": {
                        d: {"files": sorted(k for k, r in results.items() if r["domain"] == d)}
                        | {"mean_macro_f1": _mean_f1(r for r in results.values() if r["domain"] == d)}
                        for d in DOMAINS
                    },
                    "files": results,
                },
                indent=2,
            )
        )


def _mean_f1(rows: Iterable[dict[str, object]]) -> float | None:
    """Mean macro-F1 over files, each file weighing the same (as checkpoint selection does)."""
    scores = [float(r["macro_f1"]) for r in rows]  # type: ignore[arg-type]
    return round(float(np.mean(scores)), 4) if scores else None


@model_app.command("calibrate")
def calibrate_cmd(
    model: Annotated[Path, typer.Option(help="Model directory; calibration.json is written into it")],
    data: Annotated[list[Path], typer.Option(help="Dev text,label CSV (never a test set); repeat")],
    per_head: Annotated[
        bool | None,
        typer.Option(
            "--per-head/--flat",
            help="One calibration per domain, each on its own domain's files (default for models with "
            "domain heads or a domain prefix), or one for all (default for one-head models)",
        ),
    ] = None,
    provider: str = "cpu",
) -> None:
    """Fit temperature, bias and decision offsets on dev data; the engine applies them at load."""
    from stream_app.engine.calibration import CALIBRATION_FILE, DomainCalibrations
    from stream_app.engine.onnx_classifier import OnnxClassifier
    from stream_app.offline.model.calibrate import DevSet, fit, fit_heads

    stale = model / CALIBRATION_FILE
    if stale.exists():
        stale.unlink()  # fit on raw logits, never on top of an older calibration
    classifier = OnnxClassifier(model, provider=provider)  # type: ignore[arg-type]
    by_head = per_head if per_head is not None else bool(classifier.heads or classifier.domain_prefix)
    sets: dict[str, DevSet] = {}
    for path in data:
        examples, binary = read_labelled_csv(path)
        texts = [e.text for e in examples]
        head = domain_of_file(path)
        logits = np.concatenate(
            [classifier.logits(texts[i : i + 256], [head] * len(texts[i : i + 256])) for i in range(0, len(texts), 256)]
        )
        sets[path.stem] = DevSet(logits, np.array([e.label for e in examples], dtype=np.int64), binary)
    calibrations = fit_heads(sets, domain_of_file) if by_head else DomainCalibrations.uniform(fit(sets))
    calibrations.save(model)
    for domain in DOMAINS if by_head else DOMAINS[:1]:
        _print_calibration(domain if by_head else "all domains", calibrations[domain])


def _print_calibration(title: str, calibration: Calibration) -> None:
    table = Table(
        title=f"{title}: T={calibration.temperature} bias={calibration.bias} offsets={calibration.offsets} "
        f"label_floor={calibration.label_floor}"
    )
    for column in ("set", "macro-F1 raw", "calibrated", "neg recall raw", "calibrated"):
        table.add_column(column)
    for stem, row in calibration.report.get("per_set", {}).items():
        raw, cal = row["raw"], row["calibrated"]
        table.add_row(
            stem,
            f"{raw['macro_f1']:.4f}",
            f"{cal['macro_f1']:.4f}",
            f"{raw['negative_recall']:.4f}",
            f"{cal['negative_recall']:.4f}",
        )
    console.print(table)
    if "p_negative_ece_pooled" in calibration.report:
        console.print({"p_negative ECE (pooled dev)": calibration.report["p_negative_ece_pooled"]})


@model_app.command("split")
def split_cmd(
    data: Path,
    out_dir: Annotated[Path, typer.Option(help="Writes STEM_train.csv and STEM_holdout.csv here")],
    fraction: float = 0.1,
) -> None:
    """Write the stable hash split that training holds out (the same one `train` uses)."""
    examples, _ = read_labelled_csv(data)
    train, dev = split_holdout(examples, fraction)
    write_labelled_csv(out_dir / f"{data.stem}_train.csv", train)
    write_labelled_csv(out_dir / f"{data.stem}_holdout.csv", dev)
    console.print(f"{len(train)} train, {len(dev)} held out → {out_dir}")


@model_app.command("export")
def export_cmd(
    checkpoint: Annotated[Path, typer.Option(help="Hugging Face checkpoint directory")],
    out: Annotated[Path, typer.Option(help="Model directory to write")],
    name: str = "sentiment-minilm",
    version: str = "1.0.0",
    samples: Annotated[int, typer.Option(help="Texts for the parity checks")] = 300,
    keep: Annotated[str, typer.Option(help="Precisions to keep, comma separated")] = "fp32,fp16,int8",
    domain_prefix: Annotated[
        bool | None,
        typer.Option(
            "--domain-prefix/--no-domain-prefix",
            help="Whether the model reads 'DOMAIN: text' (default: as its config or train_summary.json says)",
        ),
    ] = None,
) -> None:
    """Export to ONNX (fused), quantize INT8, convert FP16, and check parity against PyTorch.
    A checkpoint with domain heads exports one graph with [batch, heads, 3] logits."""
    from stream_app.offline.model.export import export_model
    from stream_app.testing.generate import generate_stream

    texts = [record["text"] for _, record in generate_stream(minutes=max(1, samples // 60 + 1), per_minute=60, seed=99)]
    result = export_model(
        checkpoint,
        out,
        texts[:samples],
        name=name,
        version=version,
        keep=[f"model.{k.strip()}.onnx" for k in keep.split(",")],
        domain_prefix=domain_prefix,
    )
    console.print({"fused": result.fused_ops, "parity": result.parity})
    if not result.passed:
        raise typer.Exit(1)
