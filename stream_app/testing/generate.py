"""A synthetic social-post and review stream about fictional brands and tickers.

The project cannot ship third-party posts, so the demo, the tests and the benchmarks
replay this. Wording is varied by combining openers, subjects and clauses; a scripted
negative spike for one entity is what the demo's alerting should catch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

BRANDS = {
    "Nimbus Air": ("@NimbusAir", "#nimbusair"),
    "Orbital Coffee": ("@OrbitalCoffee", "#orbitalcoffee"),
    "Veltro Motors": ("@VeltroMotors", "#veltro"),
    "Quanta Bank": ("@QuantaBank", "#quantabank"),
}
TICKERS = {"$VLTR": "Veltro Motors", "$QNTA": "Quanta Bank", "$NMBS": "Nimbus Air", "$ORBC": "Orbital Coffee"}
PRODUCTS = {
    "Nimbus Air": ["seat upgrade", "lounge pass", "flight app"],
    "Orbital Coffee": ["cold brew", "espresso beans", "travel mug"],
    "Veltro Motors": ["V3 sedan", "home charger", "service plan"],
    "Quanta Bank": ["credit card", "savings account", "mobile app"],
}

POSITIVE = [
    "absolutely love {x}",
    "{x} was fantastic today",
    "really impressed with {x}",
    "{x} made my day, great job",
    "best experience I've had with {x}",
    "{x} is brilliant, highly recommend",
    "so happy with {x} right now",
    "{x} keeps getting better, thank you",
]
NEGATIVE = [
    "{x} is a total disaster",
    "really disappointed with {x}",
    "worst experience ever with {x}",
    "{x} ruined my whole day",
    "never using {x} again, awful",
    "{x} is broken and nobody helps",
    "furious at {x}, terrible service",
    "{x} wasted hours of my time, horrible",
]
NEUTRAL = [
    "{x} announced a schedule update for next week",
    "reading about {x} on the train",
    "{x} will publish results on Thursday",
    "anyone know what time {x} opens?",
    "{x} moved its office to the new building",
    "saw an ad for {x} this morning",
    "{x} is holding a press event tomorrow",
    "checking the {x} website for details",
]
OPENERS = ["", "Honestly, ", "Wow. ", "Update: ", "Just saying: ", "Ok so ", "FYI "]
CLOSERS = ["", " 🙂", " 😡", " #fail", " #win", " ...", "!", " lol"]
TEMPLATES = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}


@dataclass(frozen=True)
class SpikeScript:
    """From `start_minute` for `minutes`, posts about `entity` turn negative with `share`."""

    entity: str = "Veltro Motors"
    start_minute: int = 6
    minutes: int = 3
    share: float = 0.85


def _mention(rng: random.Random, brand: str) -> str:
    handle, tag = BRANDS[brand]
    ticker = next(t for t, b in TICKERS.items() if b == brand)
    return rng.choice([brand, handle, tag, ticker, brand.lower()])


def _text(rng: random.Random, label: str, subject: str) -> str:
    opener = rng.choice(OPENERS)
    closer = "" if label == "neutral" else rng.choice(CLOSERS)
    return f"{opener}{rng.choice(TEMPLATES[label]).format(x=subject)}{closer}".strip()


def generate_stream(
    minutes: int = 10,
    per_minute: int = 60,
    seed: int = 7,
    start: datetime | None = None,
    spike: SpikeScript | None = SpikeScript(),
    review_share: float = 0.2,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (kind, record) pairs in event-time order; kind is 'post' or 'review'."""
    rng = random.Random(seed)  # noqa: S311 - seeded synthetic data, not security
    t0 = (start or datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)
    base_mix = ["positive"] * 4 + ["neutral"] * 4 + ["negative"] * 2
    serial = 0
    for minute in range(minutes):
        for i in range(per_minute):
            serial += 1
            created = t0 + timedelta(minutes=minute, seconds=60 * i / per_minute)
            brand = rng.choice(list(BRANDS))
            label = rng.choice(base_mix)
            in_spike = spike is not None and spike.start_minute <= minute < spike.start_minute + spike.minutes
            if in_spike and spike is not None and rng.random() < 0.5:
                brand = spike.entity
                label = "negative" if rng.random() < spike.share else rng.choice(base_mix)
            if rng.random() < review_share:
                product = rng.choice(PRODUCTS[brand])
                rating = {"positive": rng.choice([4, 5]), "neutral": 3, "negative": rng.choice([1, 2])}[label]
                yield (
                    "review",
                    {
                        "id": f"r-{seed}-{serial}",
                        "text": _text(rng, label, f"the {product}"),
                        "rating": rating,
                        "product": product,
                        "brand": brand,
                        "author": f"user{rng.randrange(5000)}",
                        "created_at": created.isoformat(),
                    },
                )
            else:
                yield (
                    "post",
                    {
                        "id": f"p-{seed}-{serial}",
                        "text": _text(rng, label, _mention(rng, brand)),
                        "author": f"@user{rng.randrange(5000)}",
                        "created_at": created.isoformat(),
                        "platform": rng.choice(["x", "mastodon", "reddit"]),
                        "lang": "en",
                        "url": f"https://social.example/{serial}",
                        "metadata": {"intended": label},
                    },
                )
