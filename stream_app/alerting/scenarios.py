"""`alerts scenarios`: a labelled suite of already-scored event streams for `alerts evaluate`.

Each entity follows one scenario for the whole span. Per minute, its volume is Poisson and its
negatives binomial around that minute's rate and negative share, so noise is real noise:

* `noise-*`    stationary streams from 0.3 to 20 posts a minute (low volume included);
* `spike-*`    stationary, plus spikes that multiply the negative share by 1.5-3 for 10-40 min;
* `surge-*`    volume surges of 4-10x for 30-120 min with the share unchanged;
* `drift-*`    the share drifts slowly (0.15 -> 0.35 over days) and back;
* `daily-*`    daily cycles in volume (±70 %) and in share (±25 % of itself).

Only `spike-*` entities have truth spikes. `manifest.json` records each entity's scenario and
each spike's size, so the evaluation can report recall on exactly the spikes the target names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

DAY = 86400
LABELS = ("negative", "neutral", "positive")


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
    rate: Callable[[np.ndarray], np.ndarray]  # minutes since start -> posts per minute
    share: Callable[[np.ndarray], np.ndarray]  # minutes since start -> negative share
    spikes: list[Spike] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def _const(value: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: np.full(t.shape, value, dtype=float)


def _cycle(mean: float, amplitude: float, phase: float) -> Callable[[np.ndarray], np.ndarray]:
    """A daily sine around `mean`, ±`amplitude` of itself."""
    return lambda t: mean * (1 + amplitude * np.sin(2 * np.pi * t / 1440 + phase))


def _spiky(base: Callable[[np.ndarray], np.ndarray], spikes: list[Spike], attr: str) -> Callable[..., np.ndarray]:
    def shaped(t: np.ndarray) -> np.ndarray:
        out = base(t).copy()
        for s in spikes:
            inside = (t >= s.start_min) & (t < s.start_min + s.minutes)
            out[inside] *= s.ratio if attr == "ratio" else s.volume_factor
        return np.minimum(out, 0.95) if attr == "ratio" else out

    return shaped


def build_suite(days: float, rng: np.random.Generator, small: bool = False) -> list[Scenario]:
    minutes = int(days * 1440)
    suite: list[Scenario] = []
    noise = [(0.3, 0.2), (1, 0.25), (3, 0.2), (6, 0.15), (12, 0.3), (20, 0.2)]
    for rate, p0 in noise[::2] if small else noise:
        suite.append(Scenario(f"noise-v{rate:g}-p{p0:g}", "noise", _const(rate), _const(p0), params={"rate": rate}))
    spike_specs = [(6, 0.2), (10, 0.15), (20, 0.25), (8, 0.3)] if not small else [(10, 0.2)]
    for index, (rate, p0) in enumerate(spike_specs):
        spikes, cursor = [], int(rng.integers(180, 600))
        while cursor < minutes - 120:
            length = int(rng.choice([10, 20, 40]))
            ratio = float(rng.choice([1.5, 2.0, 2.0, 2.5, 3.0]))
            spikes.append(Spike(cursor, length, ratio, float(rng.choice([1.0, 1.0, 1.5]))))
            cursor += length + int(rng.integers(8 * 60, 20 * 60))
        suite.append(
            Scenario(
                f"spike-{index}-v{rate:g}-p{p0:g}",
                "spike",
                _spiky(_const(rate), spikes, "volume"),
                _spiky(_const(p0), spikes, "ratio"),
                spikes,
                {"rate": rate, "p0": p0},
            )
        )
    for rate, factor in [(4, 8.0), (10, 5.0)] if not small else [(4, 8.0)]:
        surges, cursor = [], int(rng.integers(120, 600))
        while cursor < minutes - 150:
            surges.append(Spike(cursor, int(rng.integers(30, 120)), 1.0, factor))
            cursor += int(rng.integers(6 * 60, 16 * 60))
        suite.append(
            Scenario(f"surge-v{rate:g}-x{factor:g}", "surge", _spiky(_const(rate), surges, "volume"), _const(0.2))
        )
    span = max(minutes, 1)

    def drift(t: np.ndarray) -> np.ndarray:
        return 0.15 + 0.2 * np.sin(np.pi * t / span) ** 2

    suite.append(Scenario("drift-up-down", "drift", _const(8), drift))
    for rate, p0, phase in [(10, 0.2, 0.0), (5, 0.3, 2.0)] if not small else [(10, 0.2, 0.0)]:
        suite.append(
            Scenario(f"daily-v{rate:g}-p{p0:g}", "daily", _cycle(rate, 0.7, phase), _cycle(p0, 0.25, phase + 1))
        )
    return suite


def write_suite(
    out: Path, days: float = 7.0, seed: int = 11, start: int = 1_764_547_200, small: bool = False
) -> dict[str, Any]:
    """Writes events.jsonl, truth.json and manifest.json under `out`; returns the manifest."""
    rng = np.random.default_rng(seed)
    suite = build_suite(days, rng, small)
    minutes = np.arange(int(days * 1440))
    rows: list[tuple[float, str, str, float]] = []
    for scenario in suite:
        volume = rng.poisson(np.maximum(scenario.rate(minutes), 0.0))
        share = np.clip(scenario.share(minutes), 0.0, 1.0)
        for minute in np.nonzero(volume)[0]:
            n = int(volume[minute])
            seconds = np.sort(rng.uniform(0, 60, n))
            negative = rng.random(n) < share[minute]
            positive = rng.random(n) < 0.5
            for s, neg, pos in zip(seconds, negative, positive, strict=True):
                label = "negative" if neg else ("positive" if pos else "neutral")
                score = -0.8 if neg else (0.7 if pos else 0.0)
                rows.append((start + 60 * int(minute) + float(s), scenario.entity, label, score))
    rows.sort(key=lambda r: r[0])
    out.mkdir(parents=True, exist_ok=True)
    with (out / "events.jsonl").open("wb") as fh:
        for serial, (ts, entity, label, score) in enumerate(rows):
            fh.write(
                orjson.dumps({"id": f"e{serial}", "entity": entity, "ts": round(ts, 3), "label": label, "score": score})
            )
            fh.write(b"\n")
    truth = {
        "spikes": [
            {"entity": s.entity, "start": start + 60 * sp.start_min, "end": start + 60 * (sp.start_min + sp.minutes)}
            for s in suite
            if s.kind == "spike"
            for sp in s.spikes
        ]
    }
    (out / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    manifest = {
        "days": days,
        "seed": seed,
        "start": start,
        "events": len(rows),
        "entities": {
            s.entity: {
                "kind": s.kind,
                **s.params,
                "spikes": [
                    {
                        "start": start + 60 * sp.start_min,
                        "end": start + 60 * (sp.start_min + sp.minutes),
                        "ratio": sp.ratio,
                        "posts_per_5min": round(5 * s.params["rate"] * sp.volume_factor, 1),
                    }
                    for sp in s.spikes
                ]
                if s.kind == "spike"
                else [],
            }
            for s in suite
        },
    }
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def qualifies(ratio: float, posts_per_window: float) -> bool:
    """The targeted spikes: at least double the share, with at least 30 posts in a short window."""
    return ratio >= 2.0 and posts_per_window >= 30
