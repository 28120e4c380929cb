"""The statistics behind the detector, as plain functions.

Why a CUSUM and not a single-window test: with 30 posts in a 5-minute window, a fixed-window
test strict enough for one false alert per entity per week (about 2 000 independent windows)
needs z ≈ 3.3, and then catches a doubling from 20 % to 40 % negative in only ~30 % of
windows. Page's CUSUM on the per-post log-likelihood ratio carries evidence across windows
and is the optimal detector for the worst-case delay at a given false-alarm rate
(Lorden 1971, Moustakides 1986). The Wilson bound is kept as a confirmation on the short
window itself, so an alert always says "this window, by itself, is above baseline".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


def wilson_bounds(successes: int, trials: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def bernoulli_llr(p0: float, p1: float) -> tuple[float, float]:
    """Per-post log-likelihood ratio of H1: p1 against H0: p0, for a negative and a non-negative post."""
    return math.log(p1 / p0), math.log((1 - p1) / (1 - p0))


def cusum_step(statistic: float, negatives: int, volume: int, p0: float, p1: float) -> float:
    """One minute of Page's CUSUM: S = max(0, S + Σ llr). Zero volume leaves S unchanged."""
    if volume <= 0:
        return statistic
    on_negative, on_other = bernoulli_llr(p0, p1)
    return max(0.0, statistic + negatives * on_negative + (volume - negatives) * on_other)


def z_score(successes: int, trials: int, p0: float) -> float:
    """Normal-approximation z of the observed share against p0, for the alert's explanation."""
    if trials <= 0 or not 0 < p0 < 1:
        return 0.0
    return (successes / trials - p0) / math.sqrt(p0 * (1 - p0) / trials)


_WORD = re.compile(r"[a-z][a-z']{2,}")
_STOPWORD_TEXT = """the and for with this that have has had was were are not but you your our they them
    their his her its
    from just what when where who why how all any can will would could should about into over than then too very
    been being get got out off one two more most some such only own same other again once here there also
    im i've it's don't didn't can't won't isn't wasn't lol"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def terms(text: str, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Lower-cased words of three letters or more, without stop-words or the entity's own names."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and w not in ignore]


@dataclass(frozen=True)
class TermScore:
    term: str
    z: float
    current: int
    baseline: int


def overrepresented_terms(
    current: Iterable[list[str]], baseline: Iterable[list[str]], limit: int = 5, min_z: float = 1.96
) -> list[TermScore]:
    """Log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008).

    Chosen over raw frequency ratios because it shrinks rare words toward the pooled rate, so
    a word seen twice in a small spike does not outrank a word seen forty times."""
    cur = Counter(w for doc in current for w in doc)
    base = Counter(w for doc in baseline for w in doc)
    pooled = cur + base
    if not cur or not pooled:
        return []
    n_cur, n_base, n_pool = sum(cur.values()), sum(base.values()), sum(pooled.values())
    prior_total = 0.1 * n_pool
    scores = []
    for word, count in cur.items():
        alpha = prior_total * pooled[word] / n_pool
        y_base = base.get(word, 0)
        delta = math.log((count + alpha) / (n_cur + prior_total - count - alpha)) - math.log(
            (y_base + alpha) / (n_base + prior_total - y_base - alpha)
        )
        z = delta / math.sqrt(1 / (count + alpha) + 1 / (y_base + alpha))
        if z >= min_z and count >= 2:
            scores.append(TermScore(word, round(z, 2), count, y_base))
    scores.sort(key=lambda s: (-s.z, s.term))
    return scores[:limit]
