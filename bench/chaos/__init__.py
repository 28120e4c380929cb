"""Chaos suite: real Kafka, real Redis and real `sentiment-monitor worker` processes.

`python -m bench.chaos --short` (CI) or `python -m bench.chaos` (full); see docs/chaos.md.
"""
