"""`alerts scenarios`: a labelled suite of already-scored event streams for `alerts evaluate`.

Each entity follows one scenario for the whole span (rates in posts per hour at the daily mean;
volumes are Poisson and negatives binomial per minute, so noise is real noise):

* `noise-*`  stationary streams from 6 to 400 posts an hour;
* `cycle-*`  daily cycles in volume (±60 %) and share (±20 % of itself), quieter weekends
             (volume x0.6, share x1.15);
* `spike-*`  a mild daily cycle, plus spikes that multiply the share by 2-3 for 15-150 minutes
             every 6-16 hours, some with 1.5x the volume;
* `surge-*`  5x volume surges of neutral or of positive posts for 30-120 minutes;
* `drift-*`  the share drifts slowly (0.15 -> 0.35 over days) and back;
* `wake-*`   a quiet entity (1 post an hour) that wakes up to 120 an hour and later spikes.

`spike-*` and `wake-*` entities have truth spikes. `manifest.json` records each entity's
scenario and each spike's size, length and volume, so the evaluation reports recall on exactly
the spikes the target names. With `texts`, each event also carries a real text drawn by its
gold label (`text`, `gold`); `label` stays the gold label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

DAY = 86400
LABELS = ("negative", "neutral", "positive")
Curve = Callable[[np.ndarray], np.ndarray]  # minutes since start -> a value per minute


@dataclass
class Spike:
    start_min: int
    minutes: int
    ratio: float
    volume_factor: float


@dataclass
class Scenario:
    entity: str
    kind: str
    rate: Curve  # posts per minute
    share: Curve  # negative share
    spikes: list[Spike] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    extra: Curve | None = None  # extra posts per minute, all labelled `extra_label` (surges)
    extra_label: int = 1


def _const(value: float) -> Curve:
    return lambda t: np.full(t.shape, value, dtype=float)


def _cycle(mean: float, amplitude: float, phase: float, weekend: float = 1.0) -> Curve:
    """A daily sine around `mean`, ±`amplitude` of itself, times `weekend` on days 5 and 6."""

    def curve(t: np.ndarray) -> np.ndarray:
        daily = mean * (1 + amplitude * np.sin(2 * np.pi * t / 1440 + phase))
        return np.where((t // 1440) % 7 >= 5, daily * weekend, daily)

    return curve


def _shaped(base: Curve, events: list[Spike], attr: str) -> Curve:
    """`base` multiplied inside each event by its ratio (shares, capped) or volume factor."""

    def shaped(t: np.ndarray) -> np.ndarray:
        out = base(t).copy()
        for s in events:
            inside = (t >= s.start_min) & (t < s.start_min + s.minutes)
            out[inside] *= s.ratio if attr == "ratio" else s.volume_factor
        return np.minimum(out, 0.95) if attr == "ratio" else out

    return shaped


def _spikes(rng: np.random.Generator, first: int, last: int) -> list[Spike]:
    spikes, cursor = [], first
    while cursor < last - 160:
        length = int(rng.choice([15, 30, 45, 60, 90, 120, 150]))
        ratio = round(float(rng.uniform(2.0, 3.0)), 2)
        spikes.append(Spike(cursor, length, ratio, float(rng.choice([1.0, 1.0, 1.5]))))
        cursor += length + int(rng.integers(6 * 60, 16 * 60))
    return spikes


def _surges(rng: np.random.Generator, minutes: int, factor: float) -> list[Spike]:
    surges, cursor = [], int(rng.integers(120, 600))
    while cursor < minutes - 150:
        surges.append(Spike(cursor, int(rng.integers(30, 120)), 1.0, factor))
        cursor += int(rng.integers(6 * 60, 16 * 60))
    return surges


def build_suite(days: float, rng: np.random.Generator, small: bool = False) -> list[Scenario]:
    """The default suite (22 entities), or a 7-entity one for quick checks (`small`)."""
    minutes = int(days * 1440)
    suite: list[Scenario] = []
    noise = [(6, 0.2), (12, 0.3), (60, 0.2), (150, 0.15), (400, 0.25)]
    for hourly, p0 in noise[1::2] if small else noise:
        suite.append(
            Scenario(f"noise-v{hourly}-p{p0:g}", "noise", _const(hourly / 60), _const(p0), params={"rate": hourly})
        )
    for hourly, p0, phase in [(10, 0.25, 0.0), (80, 0.2, 1.0), (300, 0.2, 2.5)][: 1 if small else 3]:
        rate, share = _cycle(hourly / 60, 0.6, phase, 0.6), _cycle(p0, 0.2, phase + 1, 1.15)
        suite.append(Scenario(f"cycle-v{hourly}-p{p0:g}", "cycle", rate, share, params={"rate": hourly}))
    spike_specs = [(60, 0.2), (90, 0.25), (150, 0.15), (250, 0.2), (400, 0.3), (20, 0.25)]
    for index, (hourly, p0) in enumerate(spike_specs[:2] if small else spike_specs):
        spikes = _spikes(rng, int(rng.integers(300, 720)), minutes)
        rate, share = _cycle(hourly / 60, 0.3, float(rng.uniform(0, 6))), _const(p0)
        suite.append(
            Scenario(
                f"spike-{index}-v{hourly}-p{p0:g}",
                "spike",
                _shaped(rate, spikes, "volume"),
                _shaped(share, spikes, "ratio"),
                spikes,
                {"rate": hourly, "p0": p0},
            )
        )
    for hourly, kind in [(60, "neutral"), (200, "neutral"), (100, "positive")][: 1 if small else 3]:
        # The extra posts are all neutral or all positive: the negatives stay, the share drops.
        surges, label = _surges(rng, minutes, 5.0), LABELS.index(kind)
        extra = _shaped(_const(hourly / 60), surges, "volume")
        suite.append(
            Scenario(
                f"surge-{kind}-v{hourly}-x5",
                "surge",
                _const(hourly / 60),
                _const(0.2),
                params={"rate": hourly},
                extra=extra,
                extra_label=label,
            )
        )
    if not small:
        span = max(minutes, 1)
        for hourly in (80, 20):
            suite.append(
                Scenario(f"drift-v{hourly}", "drift", _const(hourly / 60), _drift(span), params={"rate": hourly})
            )
        wake_at = minutes * 2 // 5
        spikes = _spikes(rng, wake_at + 720, minutes)
        wake_rate = lambda t: np.where(t < wake_at, 1 / 60, 2.0)  # noqa: E731
        suite.append(
            Scenario(
                "wake-v120-p0.2",
                "wake",
                _shaped(wake_rate, spikes, "volume"),
                _shaped(_const(0.2), spikes, "ratio"),
                spikes,
                {"rate": 120, "p0": 0.2, "wakes_at_min": wake_at},
            )
        )
    return suite


def _drift(span: int) -> Curve:
    return lambda t: 0.15 + 0.2 * np.sin(np.pi * t / span) ** 2


TextPools = Mapping[str, Sequence[str]]  # gold label -> texts


def read_text_pools(paths: Sequence[Path]) -> dict[str, list[str]]:
    """Texts by gold label from `text,label` CSV files (labels negative/neutral/positive)."""
    from stream_app.engine.types import LABELS as MODEL_LABELS
    from stream_app.offline.model.data import read_labelled_csv

    pools: dict[str, list[str]] = {label: [] for label in LABELS}
    for path in paths:
        examples, _ = read_labelled_csv(path)
        for example in examples:
            if example.text.strip():
                pools[MODEL_LABELS[example.label]].append(example.text)
    missing = [label for label, texts in pools.items() if not texts]
    if missing:
        raise ValueError(f"no texts labelled {missing} in {[str(p) for p in paths]}")
    return pools


def _entity_events(scenario: Scenario, minutes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(seconds since start, label index) of one entity's posts."""
    volume = rng.poisson(np.maximum(scenario.rate(minutes), 0.0))
    negatives = rng.binomial(volume, np.clip(scenario.share(minutes), 0.0, 1.0))
    positives = rng.binomial(volume - negatives, 0.5)
    extra = np.zeros_like(volume)
    if scenario.extra is not None:  # the surge's extra posts: the curve's excess over the rate
        extra = rng.poisson(np.maximum(scenario.extra(minutes) - scenario.rate(minutes), 0.0))  # noqa: S610 (not Django)
    if scenario.extra_label == 2:
        positives = positives + extra
    total = volume + extra
    minute_of = np.repeat(minutes, total)
    labels = (
        np.concatenate(
            [np.repeat([0, 1, 2], [k, n - k - q, q]) for k, n, q in zip(negatives, total, positives, strict=True)]
        )
        if len(minutes)
        else np.zeros(0, int)
    )
    seconds = minute_of * 60 + rng.uniform(0, 60, len(minute_of))
    return seconds, labels.astype(int)


def write_suite(
    out: Path,
    days: float = 7.0,
    seed: int = 11,
    start: int = 1_764_547_200,
    small: bool = False,
    texts: TextPools | None = None,
) -> dict[str, Any]:
    """Writes events.jsonl, truth.json and manifest.json under `out`; returns the manifest."""
    rng = np.random.default_rng(seed)
    suite = build_suite(days, rng, small)
    minutes = np.arange(int(days * 1440))
    parts = []
    for index, scenario in enumerate(suite):
        seconds, labels = _entity_events(scenario, minutes, rng)
        parts.append((seconds, np.full(len(seconds), index), labels))
    seconds = np.concatenate([p[0] for p in parts])
    owner = np.concatenate([p[1] for p in parts])
    labels = np.concatenate([p[2] for p in parts])
    order = np.argsort(seconds, kind="stable")
    picks = {label: rng.integers(0, len(texts[label]), len(labels)) for label in LABELS} if texts else {}
    out.mkdir(parents=True, exist_ok=True)
    score = (-0.8, 0.0, 0.7)
    with (out / "events.jsonl").open("wb") as fh:
        for serial, i in enumerate(order):
            label = LABELS[labels[i]]
            event: dict[str, Any] = {
                "id": f"e{serial}",
                "entity": suite[owner[i]].entity,
                "ts": round(start + float(seconds[i]), 3),
                "label": label,
                "score": score[labels[i]],
            }
            if texts:
                event["text"], event["gold"] = texts[label][picks[label][i]], label
            fh.write(orjson.dumps(event))
            fh.write(b"\n")
    truth = {"spikes": [_spike_span(sp, start) | {"entity": s.entity} for s in suite for sp in s.spikes]}
    (out / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    manifest = {
        "days": days,
        "seed": seed,
        "start": start,
        "events": len(labels),
        "texts": bool(texts),
        "entities": {
            s.entity: {"kind": s.kind, **s.params, "spikes": [_spike_meta(s, sp, start) for sp in s.spikes]}
            for s in suite
        },
    }
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def _spike_span(spike: Spike, start: int) -> dict[str, Any]:
    return {"start": start + 60 * spike.start_min, "end": start + 60 * (spike.start_min + spike.minutes)}


def _spike_meta(scenario: Scenario, spike: Spike, start: int) -> dict[str, Any]:
    return _spike_span(spike, start) | {
        "ratio": spike.ratio,
        "minutes": spike.minutes,
        "posts_per_hour": scenario.params["rate"],
        "posts_per_hour_during": round(
            float(np.mean(scenario.rate(np.arange(spike.start_min, spike.start_min + spike.minutes)))) * 60, 1
        ),
    }


def qualifies(ratio: float, minutes: float, posts_per_hour: float) -> bool:
    """The targeted spikes: at least double the share for at least 30 minutes, on an entity with
    at least 60 posts an hour at its daily mean."""
    return ratio >= 2.0 and minutes >= 30 and posts_per_hour >= 60
