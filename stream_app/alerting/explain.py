"""Turns a detector `Transition` into the `Alert` payload: numbers, sample posts, terms, sources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from schemas.models import Alert, AlertPost, AlertStatistic, AlertTerm, ShareAndVolume, SourceShare
from stream_app.alerting.detector import MINUTE, DetectorParams, Transition
from stream_app.alerting.stats import overrepresented_terms, terms
from stream_app.pipeline.counts import Counts
from stream_app.pipeline.samples import PostSample

SNIPPET_CHARS = 160
TOP_POSTS = 5


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def build_alert(
    transition: Transition,
    params: DetectorParams,
    posts: Sequence[PostSample] = (),
    sources: Mapping[str, Counts] | None = None,
    dashboard_url: str | None = None,
    entity_words: frozenset[str] = frozenset(),
) -> Alert:
    ev = transition.evidence
    window_s = ev.window_min * MINUTE
    window_start = ev.minute + MINUTE - window_s
    current = [p for p in posts if window_start <= p.ts < transition.at]
    negatives = sorted((p for p in current if p.label == "negative"), key=lambda p: p.score)
    before = [p for p in posts if p.ts < window_start]
    baseline_docs = [p for p in before if p.label == "negative"]
    if len(baseline_docs) < 20:
        baseline_docs = before  # too few earlier negatives: contrast with all earlier posts
    top_terms = overrepresented_terms(
        [terms(p.text, entity_words) for p in negatives], [terms(p.text, entity_words) for p in baseline_docs]
    )
    if transition.status == "firing":
        summary = (
            f"{transition.entity}: {ev.window_share:.0%} negative over the last {ev.window_min} min "
            f"({ev.window_volume} posts) against a baseline of {ev.baseline_share:.0%}"
        )
    else:
        summary = (
            f"{transition.entity}: resolved, negative share back to {ev.window_share:.0%} "
            f"({ev.window_volume} posts; baseline {ev.baseline_share:.0%})"
        )
    link = f"{dashboard_url}#entity={quote(transition.entity)}" if dashboard_url else None
    return Alert(
        alert_id=transition.alert_id,
        entity=transition.entity,
        status=transition.status,
        severity=transition.severity,
        window_s=window_s,
        starts_at=_at(transition.started_at),
        ends_at=_at(transition.at) if transition.status == "resolved" else None,
        evaluated_at=_at(transition.at),
        current=ShareAndVolume(negative_share=ev.window_share, volume=ev.window_volume),
        baseline=ShareAndVolume(negative_share=ev.baseline_share, volume=ev.baseline_volume),
        statistic=AlertStatistic(
            cusum_llr=ev.cusum,
            threshold=ev.threshold or params.cusum_threshold,
            wilson_lower=ev.wilson_lower,
            z=ev.z,
            window_min=ev.window_min,
            window_reason=ev.why,
            negatives=ev.window_negatives,
        ),
        summary=summary,
        top_negative_posts=[
            AlertPost(id=p.id, created_at=_at(p.ts), source=p.source, score=round(p.score, 3), snippet=_snippet(p.text))
            for p in negatives[:TOP_POSTS]
        ],
        terms=[AlertTerm(term=t.term, z=t.z, current=t.current, baseline=t.baseline) for t in top_terms],
        sources=sorted(
            (
                SourceShare(source=name, volume=c.volume, negative_share=round(c.negative / c.volume, 4))
                for name, c in (sources or {}).items()
                if c.volume
            ),
            key=lambda s: -s.volume,
        ),
        dashboard_url=link,
    )
