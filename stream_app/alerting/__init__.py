"""Negative-spike alerting: a pure detector, its explanations, sinks and the live service."""
