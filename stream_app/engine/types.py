"""The classifier seams and the label list. Everything downstream depends on these names only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")  # the model's output order; the one list
# The text domains a model may have a head for (model v3): general and brand posts, financial posts
# (cashtags, finance watch-list entries) and product or film reviews. A model without heads scores
# every domain alike. Which records go to which head is decided in one place: pipeline/routing.py.
DOMAINS: tuple[str, str, str] = ("social", "finance", "reviews")
DEFAULT_DOMAIN = "social"


def with_domain_prefix(domain: str, text: str) -> str:
    """The text a domain-token model reads: its domain as a leading word (`finance: ...`).
    Training and serving both call this, so the two never disagree on the marker."""
    return f"{domain}: {text}"


def resolve_domains(count: int, domains: Sequence[str] | None) -> list[str]:
    """One known domain per text: `None` means every text is `DEFAULT_DOMAIN`.

    Checked here, once, at the seam: a wrong length would silently score a text with its
    neighbour's head, and an unknown name has no head to score it with.
    """
    if domains is None:
        return [DEFAULT_DOMAIN] * count
    if len(domains) != count:
        raise ValueError(f"{len(domains)} domains for {count} texts")
    unknown = sorted(set(domains) - set(DOMAINS))
    if unknown:
        raise ValueError(f"unknown domains {unknown}; expected one of {DOMAINS}")
    return list(domains)


Encoded = TypeVar("Encoded")
Outputs = TypeVar("Outputs")


@dataclass(frozen=True, slots=True)
class Sentiment:
    """One text's result. `score = p_pos - p_neg` carries polarity and strength in [-1, 1]."""

    label: str
    probabilities: dict[str, float]
    score: float

    @classmethod
    def from_probabilities(cls, probs: Sequence[float], label: int | None = None) -> Sentiment:
        """`label` is the calibrated decision when the model has one; else the argmax."""
        as_dict = {name: float(p) for name, p in zip(LABELS, probs, strict=True)}
        best = label if label is not None else max(range(len(LABELS)), key=lambda i: probs[i])
        score = max(-1.0, min(1.0, as_dict["positive"] - as_dict["negative"]))
        return cls(label=LABELS[best], probabilities=as_dict, score=score)


@dataclass(frozen=True)
class ModelInfo:
    """Which model scored a text: what a `ScoredEvent` names and the `sm_model` metric shows."""

    name: str
    version: str
    provider: str
    precision: str
    revision: str | None = None  # digest of the directory's files, set by `engine.swap.load_classifier`


@runtime_checkable
class Classifier(Protocol):
    """Scores texts synchronously; results come back in input order, one per text.

    `domains[i]` names the head that scores `texts[i]` (see `DOMAINS`; `None`: all
    `DEFAULT_DOMAIN`). A model without heads reads it as a hint it may ignore."""

    def classify(self, texts: Sequence[str], domains: Sequence[str] | None = None) -> list[Sentiment]: ...


class AsyncClassifier(Protocol):
    """What the stream layer awaits: same contract, without blocking the event loop, and the
    identity of the model that scored the batch (models swap live between batches)."""

    async def classify_versioned(
        self, texts: Sequence[str], domains: Sequence[str] | None = None
    ) -> tuple[list[Sentiment], ModelInfo]: ...
