"""Offline work, apart from the live worker: training, export, calibration, scenario generation
and the alert evaluation. No live package imports it (tests/unit/test_import_rules.py)."""
