"""Write docs/model-behaviour.md: what the shipped model gets right, capability by capability.

In the spirit of CheckList (Ribeiro et al. 2020): small hand-written cases per capability, each
with the labels that count as a pass, and the pass rate, per head for a model with domain heads
(or a domain prefix). It reports; it does not tune: none of these texts is used for training,
calibration or checkpoint selection.

Run: PYTHONPATH=. .venv/bin/python scripts/behaviour_report.py [--model DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stream_app.engine.onnx_classifier import OnnxClassifier
from stream_app.engine.types import DEFAULT_DOMAIN, DOMAINS, Sentiment
from stream_app.pipeline.routing import route

NEG, NEU, POS = "negative", "neutral", "positive"
NOT_NEG, NOT_POS = {NEU, POS}, {NEU, NEG}

# capability -> (what it checks, [(text, labels that pass)])
CASES: dict[str, tuple[str, list[tuple[str, set[str]]]]] = {
    "negation": (
        "a negated polar word does not keep its polarity",
        [
            ("The food was not bad at all", NOT_NEG),
            ("Honestly not bad for the price", NOT_NEG),
            ("The new update is not great", NOT_POS),
            ("Not impressed with the customer service", {NEG}),
            ("I don't love the new design", NOT_POS),
            ("This phone is not worth the money", {NEG}),
            ("Never had a problem with them", NOT_NEG),
            ("The flight wasn't delayed for once", NOT_NEG),
        ],
    ),
    "intensifiers": (
        "an intensified polar text keeps its polarity",
        [
            ("The service was really really good", {POS}),
            ("Absolutely amazing concert last night", {POS}),
            ("This is extremely disappointing", {NEG}),
            ("So so so happy with my new bike", {POS}),
            ("Incredibly rude staff at the counter", {NEG}),
            ("The worst experience of my entire life", {NEG}),
            ("Super fast delivery, very pleased", {POS}),
            ("Utterly useless app", {NEG}),
        ],
    ),
    "contrast": (
        "after 'but', the second clause sets the label",
        [
            ("Good camera but the battery is awful", {NEG}),
            ("The screen is nice but it keeps crashing", {NEG}),
            ("It was expensive but worth every penny", {POS}),
            ("Slow start but the ending was brilliant", {POS}),
            ("Love the design, but the support team is useless", {NEG}),
            ("The hotel looked old but the staff were lovely", {POS}),
            ("Great price but it broke after a week", {NEG}),
            ("Long queue but the food made up for it", {POS}),
        ],
    ),
    "emoji only": (
        "posts made only of emoji",
        [
            ("😍😍😍", {POS}),
            ("😡😡", {NEG}),
            ("👍", {POS}),
            ("👎👎", {NEG}),
            ("😭💔", {NEG}),
            ("🎉🥳", {POS}),
            ("🙂", {POS}),
            ("🤮", {NEG}),
        ],
    ),
    "cashtags and finance slang": (
        "bullish slang is positive, bearish slang negative",
        [
            ("$TSLA to the moon 🚀🚀", {POS}),
            ("Bagholders crying again, $GME down 20%", {NEG}),
            ("Loading up on more $AAPL calls, this is going higher", {POS}),
            ("$NFLX puts printing today", {NEG}),
            ("Shorting $XYZ, this company is toast", {NEG}),
            ("$AMZN beat earnings, up 8% after hours", {POS}),
            ("$BA guidance cut again, selling everything", {NEG}),
            ("Diamond hands on $PLTR, not selling", {POS}),
        ],
    ),
    "mild complaints": (
        "mild, polite dissatisfaction is still negative",
        [
            ("The delivery was a bit slow this time", {NEG}),
            ("Kind of disappointed with the latest update", {NEG}),
            ("Not really what I expected, to be honest", {NEG}),
            ("The app has been a little buggy lately", {NEG}),
            ("Wish the battery lasted longer", {NEG}),
            ("Hmm, the new menu is somewhat underwhelming", {NEG}),
            ("Customer support took a while to answer", {NEG}),
            ("Slightly annoyed that the order came late", {NEG}),
        ],
    ),
    "neutral facts": (
        "plain information stays neutral",
        [
            ("The store opens at 9am tomorrow", {NEU}),
            ("Apple will report earnings on Thursday", {NEU}),
            ("The meeting has been moved to room 4B", {NEU}),
            ("Tesla announced a new factory in Texas", {NEU}),
            ("Flight 2231 departs from gate 12", {NEU}),
            ("The update is available for Android and iOS", {NEU}),
            ("Trading volume in $MSFT was 20 million shares", {NEU}),
            ("New episode airs Sunday at 8pm", {NEU}),
        ],
    ),
}


def _cell(result: Sentiment, ok: set[str]) -> str:
    p = result.probabilities
    mark = "" if result.label in ok else " ✗"
    return f"{result.label}{mark} ({p['negative']:.2f}/{p['neutral']:.2f}/{p['positive']:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--out", type=Path, default=Path("docs/model-behaviour.md"))
    args = parser.parse_args()
    classifier = OnnxClassifier(args.model, provider="cpu")
    # Every case through every head (a one-head model has one column): the report shows what
    # each head does with the same text, and which head the worker would route the text to.
    heads = list(DOMAINS) if classifier.heads or classifier.domain_prefix else [DEFAULT_DOMAIN]
    names = {h: f"`{h}`" for h in heads} if len(heads) > 1 else {DEFAULT_DOMAIN: "all domains"}
    summary, details = [], []
    totals = dict.fromkeys(heads, 0)
    routed_pass = total = 0
    for capability, (checks, cases) in CASES.items():
        texts = [text for text, _ in cases]
        routes = [route("post", text, ()) if len(heads) > 1 else DEFAULT_DOMAIN for text in texts]
        results = {head: classifier.classify(texts, [head] * len(texts)) for head in heads}
        passed = {head: [r.label in ok for (_, ok), r in zip(cases, results[head], strict=True)] for head in heads}
        routed = [passed[r][i] for i, r in enumerate(routes)]
        for head in heads:
            totals[head] += sum(passed[head])
        routed_pass += sum(routed)
        total += len(cases)
        rates = " | ".join(f"{sum(passed[h])}/{len(cases)}" for h in heads)
        summary.append(f"| {capability} | {checks} | {rates} | {sum(routed)}/{len(cases)} |")
        details.append(
            f"\n### {capability}\n\n| text | expected | routed to | "
            + " | ".join(f"{names[h]}: label (p neg/neu/pos)" for h in heads)
            + " |\n|---|---|---|"
            + "---|" * len(heads)
        )
        for i, (text, ok) in enumerate(cases):
            cells = " | ".join(_cell(results[h][i], ok) for h in heads)
            details.append(f"| {text} | {'/'.join(sorted(ok))} | `{routes[i]}` | {cells} |")
    info = classifier.info
    kind = (
        f"Heads: {', '.join(f'`{h}`' for h in heads)}; every case is scored by each"
        if len(heads) > 1
        else "One head: every domain is scored alike"
    )
    doc = "\n".join(
        [
            "# Model behaviour report",
            "",
            f"Model `{info.name}` v{info.version}, {info.precision} on {info.provider}, calibration applied. "
            "Written by `scripts/behaviour_report.py`; hand-written cases in the spirit of CheckList. "
            "These texts were never used to train, calibrate or select the model: the report describes, "
            "it is not a target.",
            "",
            f"{kind}; *routed* counts each case under the head the worker would pick for it as a post "
            "(`pipeline/routing.py`: a `$CASHTAG` goes to `finance`, the rest to `social`).",
            "",
            "| capability | checks | " + " | ".join(names[h] for h in heads) + " | routed |",
            "|---|---|" + "---:|" * (len(heads) + 1),
            *summary,
            "| **all** | | "
            + " | ".join(f"{totals[h]}/{total} ({totals[h] / total:.0%})" for h in heads)
            + f" | {routed_pass}/{total} ({routed_pass / total:.0%}) |",
            "",
            "## Cases (✗ marks a failure)",
            *details,
            "",
        ]
    )
    args.out.write_text(doc)
    print("\n".join(summary))


if __name__ == "__main__":
    main()
