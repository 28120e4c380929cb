"""R6's arithmetic and /proc readings (bench/chaos/soak.py), without Kafka or a worker: a soak
takes 35 minutes, so a wrong growth or CPU figure must be caught here, not after the run."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from bench.chaos import __main__ as chaos_main
from bench.chaos.soak import Sample, cpu_seconds, process_tree, rss_kb, summarise


def test_growth_is_measured_from_the_end_of_the_warm_up_and_cpu_per_record_over_the_window() -> None:
    samples = [
        Sample(0.0, 100_000, 1.0, 0, 0),
        Sample(60.0, 150_000, 20.0, 6_000, 6_000),  # the warm-up jump is not counted
        Sample(120.0, 151_000, 40.0, 12_000, 12_000),
        Sample(180.0, 153_000, 62.0, 18_000, 18_010),
    ]
    figures = summarise(samples, warmup_s=60.0)
    assert figures["rss_growth_pct"] == 2.0
    assert figures["rss_warmup_mb"] == round(150_000 / 1024, 1)
    assert figures["rss_max_mb"] == round(153_000 / 1024, 1)
    assert figures["cpu_ms_per_msg"] == pytest.approx(1000 * 42.0 / 12_000, abs=1e-3)
    assert figures["measured_rate"] == 100.0
    assert figures["lag_at_end"] == 10
    assert float(figures["rss_slope_mb_per_h"]) > 0  # type: ignore[arg-type]


def test_the_process_tree_includes_forked_children_and_their_memory() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for _ in range(50):  # until the child has its own RSS
            tree = process_tree(os.getpid())
            if child.pid in tree and rss_kb([child.pid]) > 0:
                break
        assert child.pid in tree
        assert rss_kb(tree) > rss_kb([os.getpid()]) > 0
        assert cpu_seconds([os.getpid()]) > 0
        assert rss_kb([2**22 + 7]) == 0 and cpu_seconds([2**22 + 7]) == 0  # gone: skipped, not an error
    finally:
        child.kill()
        child.wait()


def test_the_soak_is_in_the_full_suite_and_selectable_but_not_in_the_short_run() -> None:
    args = argparse.Namespace(warmup_minutes=1.0, soak_minutes=2.0, soak_rate=100.0)
    full = [key for key, _ in chaos_main.plan(False, None, args)]  # type: ignore[arg-type]
    short = [key for key, _ in chaos_main.plan(True, None, args)]  # type: ignore[arg-type]
    assert "r6" in full and "r6" not in short
