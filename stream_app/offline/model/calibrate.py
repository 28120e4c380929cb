"""Fit `calibration.json` (temperature, bias, decision offsets) on dev splits only.

Why three parts (see `stream_app/engine/calibration.py`): temperature and bias make the
probabilities honest (log-loss), the decision offsets make labels balanced (macro-F1 averaged
over the dev sets, each set weighing the same, so no one source's neutral convention wins).
Small grids and coordinate search: three numbers fitted on thousands of rows cannot overfit
much, and the result is reproducible to the digit.

Per head (model v3, `fit_heads`): each domain's head is fitted on its own domain's dev sets only,
by the same algorithm. The reviews sets are binary (no neutral rows), which can say nothing about
where neutral starts, so a head with only binary sets (`fit_binary`) gets a temperature fitted
by negative-vs-positive log-loss, no bias, and one polarity offset applied with opposite signs to
negative and positive: it moves the negative/positive boundary and leaves neutral's level as the
model has it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from stream_app.engine.calibration import Calibration, DomainCalibrations, softmax
from stream_app.engine.types import DOMAINS
from stream_app.offline.model.metrics import decide, score_predictions

NEG, NEU, POS = 0, 1, 2
TEMPERATURES = np.round(np.arange(0.5, 3.01, 0.05), 2)
BIAS_GRID = np.round(np.arange(-2.0, 2.01, 0.05), 2)
OFFSET_GRID = np.round(np.arange(-1.5, 1.51, 0.05), 2)


@dataclass(frozen=True)
class DevSet:
    logits: npt.NDArray[np.float32]
    gold: npt.NDArray[np.int64]
    binary: bool


def nll(logits: npt.NDArray[np.float32], gold: npt.NDArray[np.int64], temperature: float, bias: Any) -> float:
    probs = softmax(logits / np.float32(temperature) + np.asarray(bias, dtype=np.float32))
    return float(-np.log(np.maximum(probs[np.arange(len(gold)), gold], 1e-12)).mean())


def expected_calibration_error(p: npt.NDArray[np.float32], hit: npt.NDArray[np.bool_], bins: int = 10) -> float:
    """|mean predicted - observed frequency|, averaged over equal-width bins by their size."""
    edges = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        member = edges == b
        if member.any():
            total += member.sum() * abs(float(p[member].mean()) - float(hit[member].mean()))
    return total / max(1, len(p))


def reliability(p: npt.NDArray[np.float32], hit: npt.NDArray[np.bool_], bins: int = 10) -> list[dict[str, Any]]:
    edges = np.minimum((p * bins).astype(np.int64), bins - 1)
    rows = []
    for b in range(bins):
        member = edges == b
        if member.any():
            rows.append(
                {
                    "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                    "n": int(member.sum()),
                    "mean_p_negative": round(float(p[member].mean()), 4),
                    "observed_negative": round(float(hit[member].mean()), 4),
                }
            )
    return rows


def _coordinate_search(
    objective: Any, start: list[float], grid: npt.NDArray[np.float64], rounds: int = 3
) -> list[float]:
    """Minimise objective(values) over the negative and positive entries (neutral stays 0)."""
    values = list(start)
    for _ in range(rounds):
        for index in (NEG, POS):
            best = min(grid, key=lambda v: objective([*values[:index], float(v), *values[index + 1 :]]))
            values[index] = float(best)
    return values


def mean_macro_f1(sets: Mapping[str, DevSet], calibration: Calibration, offsets: list[float]) -> float:
    scores = []
    for dev in sets.values():
        decisions = decide(calibration.probabilities(dev.logits), dev.binary, offsets)
        scores.append(score_predictions(dev.gold, decisions, [0, 2] if dev.binary else [0, 1, 2]).macro_f1)
    return float(np.mean(scores))


def fit(sets: Mapping[str, DevSet]) -> Calibration:
    """Temperature and bias by pooled log-loss on 3-class rows; offsets by mean macro-F1 over every set."""
    three = [d for d in sets.values() if not d.binary]
    logits = np.concatenate([d.logits for d in three])
    gold = np.concatenate([d.gold for d in three])
    temperature = float(min(TEMPERATURES, key=lambda t: nll(logits, gold, float(t), (0.0, 0.0, 0.0))))
    bias = _coordinate_search(lambda b: nll(logits, gold, temperature, b), [0.0, 0.0, 0.0], BIAS_GRID)
    probabilistic = Calibration(temperature=temperature, bias=tuple(bias))
    offsets = _coordinate_search(lambda o: -mean_macro_f1(sets, probabilistic, o), [0.0, 0.0, 0.0], OFFSET_GRID)
    fitted = Calibration(temperature=temperature, bias=tuple(bias), offsets=tuple(offsets))
    floor = label_floor(sets, fitted)
    return Calibration(fitted.temperature, fitted.bias, fitted.offsets, floor, report=describe(sets, fitted))


def binary_nll(logits: npt.NDArray[np.float32], gold: npt.NDArray[np.int64], temperature: float) -> float:
    """Log-loss of the negative-vs-positive softmax (what a binary row can vouch for)."""
    polar = logits[:, [NEG, POS]] / np.float32(temperature)
    probs = softmax(polar)
    return float(-np.log(np.maximum(probs[np.arange(len(gold)), (gold == POS).astype(np.int64)], 1e-12)).mean())


def fit_binary(sets: Mapping[str, DevSet]) -> Calibration:
    """A head whose dev sets are all binary: temperature by negative-vs-positive log-loss, bias
    zero, and offsets `(-d, 0, +d)` with `d` by mean macro-F1 (ties to the smallest |d|)."""
    logits = np.concatenate([d.logits for d in sets.values()])
    gold = np.concatenate([d.gold for d in sets.values()])
    temperature = float(min(TEMPERATURES, key=lambda t: binary_nll(logits, gold, float(t))))
    probabilistic = Calibration(temperature=temperature)
    by_size = sorted(OFFSET_GRID.tolist(), key=lambda v: (abs(v), v))
    shift = float(min(by_size, key=lambda d: -mean_macro_f1(sets, probabilistic, [-d, 0.0, d])))
    fitted = Calibration(temperature=temperature, offsets=(-shift, 0.0, shift))
    floor = label_floor(sets, fitted)
    return Calibration(fitted.temperature, fitted.bias, fitted.offsets, floor, report=describe(sets, fitted))


def fit_heads(sets: Mapping[str, DevSet], domain_of: Callable[[str], str]) -> DomainCalibrations:
    """One calibration per domain, each fitted on the sets `domain_of(stem)` assigns to it (by
    `fit`, or `fit_binary` when all of them are binary). A domain without dev sets keeps the
    identity, and its report says so."""
    heads: dict[str, Calibration] = {}
    for domain in DOMAINS:
        own = {stem: dev for stem, dev in sets.items() if domain_of(stem) == domain}
        if not own:
            heads[domain] = Calibration(report={"fitted_on": [], "note": "no dev sets for this domain: identity"})
        elif all(dev.binary for dev in own.values()):
            heads[domain] = fit_binary(own)
        else:
            heads[domain] = fit(own)
    return DomainCalibrations(heads)


def _floor_sets(sets: Mapping[str, DevSet]) -> dict[str, DevSet]:
    """The 3-class sets; for a domain with binary sets only (reviews), its binary sets, whose
    non-negative rows are all positive (their 3-way labels are what the service serves)."""
    three = {stem: dev for stem, dev in sets.items() if not dev.binary}
    return three or dict(sets)


def false_negative_rates(sets: Mapping[str, DevSet], calibration: Calibration) -> dict[str, float]:
    """Per 3-class dev set (binary sets when there is none): the share of its non-negative
    posts that get the label negative."""
    rates = {}
    for stem, dev in _floor_sets(sets).items():
        labels = decide(calibration.probabilities(dev.logits), False, calibration.offsets)
        others = dev.gold != NEG
        if others.any():
            rates[stem] = float((labels[others] == NEG).mean())
    return rates


def label_floor(sets: Mapping[str, DevSet], calibration: Calibration) -> float:
    """The mean of `false_negative_rates` over the sets, each set weighing the same (as the
    offsets do): sources differ a lot (about 0.05 on TweetEval, 0.29 on airline complaints)."""
    rates = false_negative_rates(sets, calibration)
    return round(float(np.mean(list(rates.values()))), 4) if rates else 0.0


def describe(sets: Mapping[str, DevSet], calibration: Calibration) -> dict[str, Any]:
    """Before/after figures per dev set and the reliability of p_negative, for the model card."""
    identity = Calibration()
    per_set: dict[str, Any] = {}
    for stem, dev in sets.items():
        ids = [0, 2] if dev.binary else [0, 1, 2]
        row: dict[str, Any] = {"n": len(dev.gold), "binary": dev.binary}
        for name, cal in (("raw", identity), ("calibrated", calibration)):
            probs = cal.probabilities(dev.logits)
            report = score_predictions(dev.gold, decide(probs, dev.binary, cal.offsets), ids)
            row[name] = {
                "macro_f1": round(report.macro_f1, 4),
                "negative_recall": round(report.per_class["negative"]["recall"], 4),
            }
            if not dev.binary:
                hit = dev.gold == NEG
                row[name]["ece_p_negative"] = round(expected_calibration_error(probs[:, NEG], hit), 4)
        per_set[stem] = row
    three = list(_floor_sets(sets).values())
    pooled_logits = np.concatenate([d.logits for d in three])
    pooled_hit = np.concatenate([d.gold for d in three]) == NEG
    pooled = calibration.probabilities(pooled_logits)[:, NEG]
    return {
        "binary_only": all(d.binary for d in sets.values()),
        "fitted_on": sorted(sets),
        "negative_label_rate_on_non_negative": {
            k: round(v, 4) for k, v in false_negative_rates(sets, calibration).items()
        },
        "per_set": per_set,
        "p_negative_reliability_pooled": reliability(pooled, pooled_hit),
        "p_negative_ece_pooled": {
            "raw": round(expected_calibration_error(softmax(pooled_logits)[:, NEG], pooled_hit), 4),
            "calibrated": round(expected_calibration_error(pooled, pooled_hit), 4),
        },
    }
