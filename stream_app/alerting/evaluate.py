"""`alerts evaluate`: replay already-scored events through the detector and score its alerts.

Matching follows the issue: a firing for entity E at time t is a true positive when some
spike of E has start <= t <= end + grace (grace = one short window); any other firing is a
false positive. Recall is the share of spikes with a true positive; delay runs from a spike's
start to its first true positive. `t` is the end of the minute in which the detector decided.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stream_app.alerting.detector import MINUTE, DetectorParams, EntityState, SpikeDetector, Transition
from stream_app.alerting.scenarios import qualifies
from stream_app.errors import SentimentMonitorError

Counts = dict[str, dict[int, list[int]]]  # entity -> minute -> [negatives, volume]


class EvaluationInputError(SentimentMonitorError):
    """EVENTS.jsonl or TRUTH.json is not in the documented format."""


def read_events(lines: Iterable[bytes]) -> tuple[Counts, int, int]:
    """Minute counts per entity, and the first and last minute seen."""
    counts: Counts = defaultdict(dict)
    first = last = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
            entity, ts, label = str(event["entity"]), float(event["ts"]), event["label"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise EvaluationInputError(f"events line {number}: {exc}") from exc
        if label not in ("negative", "neutral", "positive"):
            raise EvaluationInputError(f"events line {number}: unknown label {label!r}")
        minute = int(ts // MINUTE) * MINUTE
        cell = counts[entity].setdefault(minute, [0, 0])
        cell[0] += label == "negative"
        cell[1] += 1
        first = minute if first is None else min(first, minute)
        last = minute if last is None else max(last, minute)
    if first is None or last is None:
        raise EvaluationInputError("no events")
    return counts, first, last


def run_detector(
    counts: Counts, first: int, last: int, params: DetectorParams, overrides: Mapping[str, DetectorParams] | None = None
) -> Iterator[Transition]:
    for entity in sorted(counts):
        detector = SpikeDetector((overrides or {}).get(entity, params))
        state = EntityState()
        minutes = counts[entity]
        for minute in range(first, last + MINUTE, MINUTE):
            negatives, volume = minutes.get(minute, (0, 0))
            transition = detector.step(entity, state, minute, negatives, volume)
            if transition is not None:
                yield transition


@dataclass
class Report:
    alerts: int
    true_positives: int
    false_positives: int
    precision: float
    recall: float
    spikes: int
    spikes_detected: int
    median_delay_s: float | None
    median_delay_windows: float | None
    false_alerts_per_entity_per_day: float
    entities: int
    days: float
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def score(
    firings: list[Transition], truth: list[dict[str, Any]], entities: int, days: float, window_s: int
) -> tuple[Report, dict[int, float], list[Transition]]:
    """Returns the report, the delay of each detected spike (by index in `truth`), and the false firings."""
    by_entity: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for index, spike in enumerate(truth):
        by_entity[str(spike["entity"])].append((index, spike))
    delays: dict[int, float] = {}
    false: list[Transition] = []
    tp = 0
    for firing in firings:
        hits = [i for i, s in by_entity.get(firing.entity, []) if s["start"] <= firing.at <= s["end"] + window_s]
        if not hits:
            false.append(firing)
            continue
        tp += 1
        for index in hits:
            delays.setdefault(index, firing.at - truth[index]["start"])
    median = statistics.median(delays.values()) if delays else None
    report = Report(
        alerts=len(firings),
        true_positives=tp,
        false_positives=len(false),
        precision=round(tp / len(firings), 4) if firings else 1.0,
        recall=round(len(delays) / len(truth), 4) if truth else 1.0,
        spikes=len(truth),
        spikes_detected=len(delays),
        median_delay_s=median,
        median_delay_windows=round(median / window_s, 3) if median is not None else None,
        false_alerts_per_entity_per_day=round(len(false) / max(entities, 1) / max(days, 1e-9), 4),
        entities=entities,
        days=round(days, 3),
        details={},
    )
    return report, delays, false


def evaluate(events: Path, truth_path: Path, params: DetectorParams, manifest_path: Path | None = None) -> Report:
    with events.open("rb") as fh:
        counts, first, last = read_events(fh)
    try:
        truth = orjson.loads(truth_path.read_bytes())["spikes"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise EvaluationInputError(f"truth: {exc}") from exc
    transitions = list(run_detector(counts, first, last, params))
    firings = [t for t in transitions if t.status == "firing"]
    days = (last + MINUTE - first) / 86400
    window_s = params.short_window_min * MINUTE
    report, delays, false = score(firings, truth, len(counts), days, window_s)
    report.details["resolved"] = sum(t.status == "resolved" for t in transitions)
    report.details["false_alerts_by_entity"] = dict(sorted(Counter(f.entity for f in false).items()))
    if manifest_path is not None:
        manifest = orjson.loads(manifest_path.read_bytes())
        spikes = {(e, s["start"]): s for e, info in manifest["entities"].items() for s in info["spikes"]}
        report.details.update(_by_manifest(manifest, spikes, truth, delays, false, days, window_s))
        report.details.update(_observed_volume_recall(spikes, truth, delays, counts, params.short_window_min))
    return report


def _observed_volume_recall(
    spikes: Mapping[tuple[str, Any], dict[str, Any]],
    truth: list[dict[str, Any]],
    delays: dict[int, float],
    counts: Counts,
    window_min: int,
) -> dict[str, Any]:
    """The target read literally on the data: spikes of at least 2x whose short windows held at
    least 30 posts on average (the manifest's own figure is the expected volume)."""
    chosen = []
    for index, spike in enumerate(truth):
        minutes = counts.get(spike["entity"], {})
        span = range(int(spike["start"]), int(spike["end"]), MINUTE)
        per_window = window_min * sum(minutes.get(m, (0, 0))[1] for m in span) / max(len(span), 1)
        meta = spikes.get((spike["entity"], spike["start"]))
        if qualifies(meta["ratio"] if meta else 0.0, per_window):
            chosen.append(index)
    hit = [i for i in chosen if i in delays]
    return {
        "targeted_spikes_observed_volume": len(chosen),
        "targeted_recall_observed_volume": round(len(hit) / len(chosen), 4) if chosen else None,
    }


def _by_manifest(
    manifest: dict[str, Any],
    spikes: Mapping[tuple[str, Any], dict[str, Any]],
    truth: list[dict[str, Any]],
    delays: dict[int, float],
    false: list[Transition],
    days: float,
    window_s: int,
) -> dict[str, Any]:
    """Target-specific figures: recall on qualifying spikes, false alerts per week on stationary kinds."""
    targeted = [
        i
        for i, s in enumerate(truth)
        if (m := spikes.get((s["entity"], s["start"]))) and qualifies(m["ratio"], m["posts_per_5min"])
    ]
    hit = [delays[i] for i in targeted if i in delays]
    kinds: dict[str, list[str]] = defaultdict(list)
    for entity, info in manifest["entities"].items():
        kinds[info["kind"]].append(entity)
    false_by_entity = Counter(f.entity for f in false)
    weeks = days / 7
    return {
        "targeted_spikes": len(targeted),
        "targeted_recall": round(len(hit) / len(targeted), 4) if targeted else None,
        "targeted_median_delay_windows": round(statistics.median(hit) / window_s, 3) if hit else None,
        "false_alerts_per_entity_per_week_by_kind": {
            kind: round(sum(false_by_entity.get(e, 0) for e in names) / len(names) / weeks, 3)
            for kind, names in sorted(kinds.items())
        },
        "worst_entity_false_alerts_per_week": round(max(false_by_entity.values(), default=0) / weeks, 3),
    }
