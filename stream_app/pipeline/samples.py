"""A scored post as kept for alert explanations (sample posts and over-represented terms)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class PostSample:
    id: str
    ts: float
    label: str
    score: float
    source: str
    text: str

    def encode(self) -> bytes:
        return orjson.dumps([self.id, self.ts, self.label, self.score, self.source, self.text])

    @classmethod
    def decode(cls, raw: bytes) -> PostSample:
        id_, ts, label, score, source, text = orjson.loads(raw)
        return cls(id_, ts, label, score, source, text)
