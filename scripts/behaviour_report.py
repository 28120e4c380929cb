"""Write docs/model-behaviour.md: what the shipped model gets right, capability by capability.

In the spirit of CheckList (Ribeiro et al. 2020): small hand-written cases per capability, each
with the labels that count as a pass, and the pass rate. It reports; it does not tune: none of
these texts is used for training, calibration or checkpoint selection.

Run: PYTHONPATH=. .venv/bin/python scripts/behaviour_report.py [--model DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stream_app.engine.onnx_classifier import OnnxClassifier

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--out", type=Path, default=Path("docs/model-behaviour.md"))
    args = parser.parse_args()
    classifier = OnnxClassifier(args.model, provider="cpu")
    summary, details = [], []
    total_pass = total = 0
    for capability, (checks, cases) in CASES.items():
        results = classifier.classify([text for text, _ in cases])
        passed = [r.label in ok for (_, ok), r in zip(cases, results, strict=True)]
        total_pass += sum(passed)
        total += len(cases)
        summary.append(f"| {capability} | {checks} | {sum(passed)}/{len(cases)} | {sum(passed) / len(cases):.0%} |")
        details.append(f"\n### {capability}\n\n| text | expected | got | p(neg/neu/pos) |\n|---|---|---|---|")
        for (text, ok), result, good in zip(cases, results, passed, strict=True):
            p = result.probabilities
            mark = "" if good else " ✗"
            details.append(
                f"| {text} | {'/'.join(sorted(ok))} | {result.label}{mark} | "
                f"{p['negative']:.2f} / {p['neutral']:.2f} / {p['positive']:.2f} |"
            )
    info = classifier.info
    doc = "\n".join(
        [
            "# Model behaviour report",
            "",
            f"Model `{info.name}` v{info.version}, {info.precision} on {info.provider}, calibration applied. "
            "Written by `scripts/behaviour_report.py`; hand-written cases in the spirit of CheckList. "
            "These texts were never used to train, calibrate or select the model: the report describes, "
            "it is not a target.",
            "",
            "| capability | checks | passed | rate |",
            "|---|---|---:|---:|",
            *summary,
            f"| **all** | | {total_pass}/{total} | {total_pass / total:.0%} |",
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
