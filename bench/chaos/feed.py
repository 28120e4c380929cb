"""What a chaos run produces: valid posts and reviews, and fuzzed records with the reason each
must be dead-lettered for. Every record sent is remembered with its Kafka position."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from stream_app.ingest.feeder import Feeder

TEXTS = (
    "Veltro Motors recall is a disaster, never again",
    "loving my new Veltro Motors car, smooth ride",
    "Quanta Bank app is down again, so annoying",
    "Quanta Bank support was quick and helpful today",
    "what time does the Veltro Motors store open?",
    "a:b%7C shipped an update \u0000 with a NUL inside",
)
PLATFORMS = ("x", "reddit", "mastodon", "x:1", "x:1|src:y")


@dataclass(frozen=True)
class Sent:
    """One produced record: its position, and `reason` when it must become a dead letter."""

    topic: str
    partition: int
    offset: int
    record_id: str | None
    reason: str | None


def valid_record(rng: random.Random, serial: int, review: bool) -> dict[str, object]:
    now = datetime.now(UTC).replace(microsecond=0)
    text = rng.choice(TEXTS)
    if review:
        brand = rng.choice(["Veltro Motors", "Veltro Motors|src:reddit", "Quanta Bank"])
        return {"id": f"r{serial}", "text": text, "rating": rng.randint(1, 5), "product": "P1", "brand": brand,
                "created_at": now.isoformat()}  # fmt: skip
    return {"id": f"p{serial}", "text": text, "platform": rng.choice(PLATFORMS), "created_at": now.isoformat()}


def fuzzed_record(rng: random.Random, serial: int, include_big: bool) -> tuple[bytes | None, str]:
    """A bad record for the posts topic and the dead-letter reason it must get."""
    now = datetime.now(UTC)
    base = {"id": f"f{serial}", "text": "fuzz", "platform": "x", "created_at": now.isoformat()}
    if include_big:
        return orjson.dumps({**base, "text": "y" * 1_000_050}), "payload_too_large"
    choice = rng.randrange(12)
    cases: list[tuple[bytes | None, str]] = [
        (orjson.dumps({**base, "created_at": "9999-12-31T00:00:00Z"}), "future_timestamp"),
        (orjson.dumps({**base, "created_at": (now + timedelta(days=1)).isoformat()}), "future_timestamp"),
        (orjson.dumps({**base, "created_at": "2001-01-01T00:00:00Z"}), "ancient_timestamp"),
        (b"\xff\xfe" + rng.randbytes(20), "bad_utf8"),
        (None, "malformed_json"),
        (orjson.dumps({**base, "text": None}), "wrong_type"),
        (orjson.dumps({**base, "platform": None}), "wrong_type"),
        (b"{" + rng.randbytes(8).hex().encode(), "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (orjson.dumps({k: v for k, v in base.items() if k != "text"}), "missing_field"),
        (orjson.dumps({**base, "text": " \t "}), "empty_text"),
        (orjson.dumps({**base, "text": "z" * 20_000}), "text_too_long"),
    ]
    return cases[choice]


@dataclass
class Feed:
    bootstrap: str
    posts: str
    reviews: str
    seed: int = 13
    sent: list[Sent] = field(default_factory=list)
    _serial: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.feeder = Feeder(self.bootstrap, durable=True)  # keeps every record through a broker restart
        self._lock = threading.Lock()
        self._pending: list[tuple[object, str | None, str | None]] = []

    def _send(self, topic: str, value: bytes | None, record_id: str | None, reason: str | None) -> None:
        with self._lock:
            self._pending.append((self.feeder.send(topic, value), record_id, reason))

    def valid(self, count: int) -> None:
        for _ in range(count):
            self._serial += 1
            review = self.rng.random() < 0.2
            record = valid_record(self.rng, self._serial, review)
            self._send(self.reviews if review else self.posts, orjson.dumps(record), str(record["id"]), None)

    def fuzz(self, count: int, valid_share: float = 0.5, big: int = 1) -> None:
        """`count` records, about `valid_share` of them valid, the rest bad; `big` of them ~1 MB."""
        for i in range(count):
            self._serial += 1
            if self.rng.random() < valid_share:
                self.valid(1)
                continue
            value, reason = fuzzed_record(self.rng, self._serial, include_big=i < big)
            self._send(self.posts, value, None, reason)

    def steady(self, rate: float, stop: threading.Event) -> threading.Thread:
        """Valid records at `rate` per second until `stop` is set."""

        def run() -> None:
            while not stop.is_set():
                self.valid(max(1, int(rate / 10)))
                time.sleep(0.1)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def flush(self) -> list[Sent]:
        self.feeder.flush()
        with self._lock:
            pending, self._pending = self._pending, []
        for future, record_id, reason in pending:
            meta = future.get(timeout=300)  # type: ignore[attr-defined]
            self.sent.append(Sent(meta.topic, meta.partition, meta.offset, record_id, reason))
        return self.sent

    def close(self) -> None:
        self.feeder.close()
