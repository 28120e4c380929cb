"""Test kit shipped with the package: local Kafka and Redis launchers, feeders, fakes."""
