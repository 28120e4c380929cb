"""Local Kafka and Redis launchers and the synthetic feed: for tests and the demo, never production."""
