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
from stream_app.errors import SentimentMonitorError
from stream_app.offline.scenarios import LABELS, qualifies

Counts = dict[str, dict[int, list[int]]]  # entity -> minute -> [negatives, volume]


class EvaluationInputError(SentimentMonitorError):
    """EVENTS.jsonl or TRUTH.json is not in the documented format."""


def parse_events(lines: Iterable[bytes], need_label: bool = True) -> list[tuple[str, int, str | None, str | None]]:
    """(entity, minute, label, text) per event; `label` may be absent when the texts will be scored."""
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
            entity, ts = str(event["entity"]), float(event["ts"])
            label, text = (event["label"] if need_label else event.get("label")), event.get("text")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise EvaluationInputError(f"events line {number}: {exc}") from exc
        if label is not None and label not in LABELS:
            raise EvaluationInputError(f"events line {number}: unknown label {label!r}")
        if not need_label and not isinstance(text, str):
            raise EvaluationInputError(f"events line {number}: no text to score")
        events.append((entity, int(ts // MINUTE) * MINUTE, label, text))
    if not events:
        raise EvaluationInputError("no events")
    return events


def count_events(events: Iterable[tuple[str, int, str | None, str | None]]) -> tuple[Counts, int, int]:
    """Minute counts per entity, and the first and last minute seen."""
    counts: Counts = defaultdict(dict)
    first = last = None
    for entity, minute, label, _ in events:
        cell = counts[entity].setdefault(minute, [0, 0])
        cell[0] += label == "negative"
        cell[1] += 1
        first = minute if first is None else min(first, minute)
        last = minute if last is None else max(last, minute)
    if first is None or last is None:
        raise EvaluationInputError("no events")
    return counts, first, last


def read_events(lines: Iterable[bytes], model_dir: Path | None = None) -> tuple[Counts, int, int]:
    """Minute counts from the events' labels, or from `model_dir`'s labels of their texts."""
    events = parse_events(lines, need_label=model_dir is None)
    if model_dir is not None:
        from stream_app.offline.model_labels import label_texts

        labels = label_texts(model_dir, (str(text) for _, _, _, text in events))
        events = [(entity, minute, labels[str(text)], text) for entity, minute, _, text in events]
    return count_events(events)


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


def evaluate(
    events: Path,
    truth_path: Path,
    params: DetectorParams,
    manifest_path: Path | None = None,
    score_with: Path | None = None,
) -> Report:
    """Replay `events` through the detector; with `score_with`, on that model's labels of the texts."""
    with events.open("rb") as fh:
        counts, first, last = read_events(fh, score_with)
    manifest = orjson.loads(manifest_path.read_bytes()) if manifest_path is not None else None
    labels = f"model {score_with}" if score_with else "events' labels"
    return replay(counts, first, last, read_truth(truth_path), params, labels, manifest)


def read_truth(path: Path) -> list[dict[str, Any]]:
    """The spikes of TRUTH.json."""
    try:
        spikes: list[dict[str, Any]] = orjson.loads(path.read_bytes())["spikes"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise EvaluationInputError(f"truth: {exc}") from exc
    return spikes


def replay(
    counts: Counts,
    first: int,
    last: int,
    truth: list[dict[str, Any]],
    params: DetectorParams,
    labels: str,
    manifest: dict[str, Any] | None = None,
) -> Report:
    """Run the detector over minute counts and score its alerts against `truth` (with the
    manifest, also the targeted figures). `labels` says where the labels came from."""
    transitions = list(run_detector(counts, first, last, params))
    firings = [t for t in transitions if t.status == "firing"]
    days = (last + MINUTE - first) / 86400
    window_s = params.short_window_min * MINUTE
    report, delays, false = score(firings, truth, len(counts), days, window_s)
    report.details["labels"] = labels
    report.details["resolved"] = sum(t.status == "resolved" for t in transitions)
    report.details["false_alerts_by_entity"] = dict(sorted(Counter(f.entity for f in false).items()))
    report.details["fired_windows_min"] = dict(sorted(Counter(f.evidence.window_min for f in firings).items()))
    if manifest is not None:
        report.details.update(_by_manifest(manifest, truth, delays, false, days))
    return report


def _by_manifest(
    manifest: dict[str, Any],
    truth: list[dict[str, Any]],
    delays: dict[int, float],
    false: list[Transition],
    days: float,
) -> dict[str, Any]:
    """Target figures: recall and delay on the targeted spikes (also by entity volume), and
    false alerts per entity per week by scenario kind."""
    spikes = {(e, s["start"]): s for e, info in manifest["entities"].items() for s in info["spikes"]}
    metas = [spikes.get((s["entity"], s["start"])) for s in truth]
    targeted = [i for i, m in enumerate(metas) if m and qualifies(m["ratio"], m["minutes"], m["posts_per_hour"])]
    hit = [delays[i] for i in targeted if i in delays]
    bands: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i in targeted:
        meta = metas[i]
        if meta is None:  # targeted spikes always carry their manifest entry
            continue
        band = _band(meta["posts_per_hour"])
        bands[band][0] += i in delays
        bands[band][1] += 1
    kinds: dict[str, list[str]] = defaultdict(list)
    for entity, info in manifest["entities"].items():
        kinds[info["kind"]].append(entity)
    false_by_entity = Counter(f.entity for f in false)
    weeks = days / 7
    stationary = [e for kind in ("noise", "cycle", "surge", "drift") for e in kinds.get(kind, [])]
    return {
        "targeted_spikes": len(targeted),
        "targeted_detected": len(hit),
        "targeted_recall": round(len(hit) / len(targeted), 4) if targeted else None,
        "targeted_median_delay_min": round(statistics.median(hit) / MINUTE, 1) if hit else None,
        "targeted_recall_by_posts_per_hour": {k: f"{v[0]}/{v[1]}" for k, v in sorted(bands.items())},
        "false_alerts_per_entity_per_week_by_kind": {
            kind: round(sum(false_by_entity.get(e, 0) for e in names) / len(names) / weeks, 3)
            for kind, names in sorted(kinds.items())
        },
        "worst_stationary_entity_false_alerts_per_week": round(
            max((false_by_entity.get(e, 0) for e in stationary), default=0) / weeks, 3
        ),
        "worst_entity_false_alerts_per_week": round(max(false_by_entity.values(), default=0) / weeks, 3),
    }


def _band(posts_per_hour: float) -> str:
    for upper in (100, 200, 300):
        if posts_per_hour < upper:
            return f"<{upper}"
    return ">=300"
