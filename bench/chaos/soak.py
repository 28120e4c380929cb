"""R6, the soak: one worker with the real default model under a steady feed for a long time.

Nothing breaks here; what is measured is slow drift. A leak, or a cache or dict that only grows,
shows up as resident memory that keeps climbing once the warm-up is over (onnxruntime's arenas,
the tokenizer, Kafka's fetch buffers and Faust's tables settle in the first minutes, which is why
growth is measured from the end of the warm-up, not from start-up). CPU per message over the
measured window is the figure capacity planning needs. The run ends with the usual exactness
verdict, so a long run that drops or double-counts a record fails even if memory is flat.

The worker's memory and CPU are read from /proc (VmRSS; utime+stime), summed over the worker and
any processes it forked, every `sample_s` seconds; the series goes into `--json` (`extra.samples`).
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from bench.chaos.check import Result, verdict
from bench.chaos.feed import Feed
from bench.chaos.scenarios import Env
from bench.chaos.stack import Stack, Worker

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")
GROWTH_LIMIT_PCT = 3.0


@dataclass(frozen=True)
class Sample:
    """One reading: seconds since the feed started, the worker tree's RSS and CPU, records in."""

    t_s: float
    rss_kb: int
    cpu_s: float
    consumed: int
    sent: int


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc/PID/task/*/children), so a forking worker counts whole."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in (PROC / str(current) / "task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue  # the task ended between the listing and the read
    return out


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of each process (fields 14 and 15 of /proc/PID/stat, counted after the `)`)."""
    ticks = 0
    for pid in pids:
        try:
            fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / TICKS


def consumed(worker: Worker) -> int:
    """Records the worker has taken in (`sm_messages_in_total`, all topics); -1 if /metrics is down."""
    try:
        url = f"http://127.0.0.1:{worker.env['SM_WEB_PORT']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return -1
    lines = [line for line in text.splitlines() if line.startswith("sm_messages_in_total{")]
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in lines))


def paced(feed: Feed, rate: float, stop: threading.Event) -> threading.Thread:
    """Valid records at `rate` per second against the clock, so send time does not lower the rate."""

    def run() -> None:
        started, sent = time.monotonic(), 0
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate) - sent
            if due > 0:
                feed.valid(due)
                sent += due
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True, name="soak-feed")
    thread.start()
    return thread


def summarise(samples: list[Sample], warmup_s: float) -> dict[str, object]:
    """The figures: RSS at the end of the warm-up and at the end, growth, max, CPU per message."""
    measured = [s for s in samples if s.t_s >= warmup_s - 1e-6]
    first, last = measured[0], measured[-1]
    records = max(1, last.consumed - first.consumed)
    span = max(1e-9, last.t_s - first.t_s)
    # least-squares slope of RSS over the measured window: steady creep, not one late jump
    mean_t = sum(s.t_s for s in measured) / len(measured)
    mean_r = sum(s.rss_kb for s in measured) / len(measured)
    var = sum((s.t_s - mean_t) ** 2 for s in measured) or 1.0
    slope_kb_s = sum((s.t_s - mean_t) * (s.rss_kb - mean_r) for s in measured) / var
    return {
        "rss_warmup_mb": round(first.rss_kb / 1024, 1),
        "rss_end_mb": round(last.rss_kb / 1024, 1),
        "rss_growth_pct": round(100 * (last.rss_kb - first.rss_kb) / first.rss_kb, 2),
        "rss_max_mb": round(max(s.rss_kb for s in samples) / 1024, 1),
        "rss_max_measured_mb": round(max(s.rss_kb for s in measured) / 1024, 1),
        "rss_slope_mb_per_h": round(slope_kb_s * 3600 / 1024, 2),
        "cpu_ms_per_msg": round(1000 * (last.cpu_s - first.cpu_s) / records, 3),
        "cpu_core_share": round((last.cpu_s - first.cpu_s) / span, 3),
        "measured_records": last.consumed - first.consumed,
        "measured_rate": round((last.consumed - first.consumed) / span, 1),
        "lag_at_end": last.sent - last.consumed,
    }


def _sample_loop(worker: Worker, feed: Feed, due: list[float], warmup_s: float) -> tuple[list[Sample], list[str]]:
    """Samples at each `due` second (since now), with a progress bar and a line a minute."""
    assert worker.process is not None
    pid, total_s = worker.process.pid, due[-1]
    samples: list[Sample] = []
    started, next_line = time.monotonic(), 0.0
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(width=200)) as progress:
        task = progress.add_task(f"R6 soak, {warmup_s / 60:g} min warm-up", total=total_s)
        for at in due:
            while (now := time.monotonic() - started) < at:
                progress.update(task, completed=now)
                time.sleep(min(0.5, at - now))
            if not worker.alive():
                return samples, [f"worker exited during the soak at {now:.0f} s"]
            feed.flush()  # keeps only positions, not producer futures, for 100,000s of records
            pids = process_tree(pid)
            samples.append(Sample(round(now, 1), rss_kb(pids), cpu_seconds(pids), consumed(worker), len(feed.sent)))
            if now >= next_line or at == total_s:
                last, phase = samples[-1], "warm-up" if now < warmup_s else "measured"
                progress.console.print(
                    f"R6 {phase} {now / 60:5.1f}/{total_s / 60:g} min: sent {last.sent}, consumed {last.consumed}, "
                    f"RSS {last.rss_kb / 1024:.1f} MB, CPU {last.cpu_s:.1f} s, {len(pids)} process(es)"
                )
                next_line += 60
        progress.update(task, completed=total_s)
    return samples, []


def soak(env: Env, warmup_min: float, soak_min: float, rate: float = 100.0, sample_s: float = 10.0) -> Result:
    """R6: `warmup_min` minutes of steady feed, then `soak_min` measured; pass if RSS grew < 3 %."""
    stack = Stack(env.kafka, env.redis, env.root, "r6")
    warmup_s, total_s = warmup_min * 60, (warmup_min + soak_min) * 60
    # every `sample_s`, plus one sample exactly at the end of the warm-up and one at the very end
    due = sorted({*(i * sample_s for i in range(int(total_s // sample_s) + 1)), warmup_s, total_s})
    feed = Feed(stack.kafka.bootstrap, stack.env["SM_TOPIC_POSTS"], stack.env["SM_TOPIC_REVIEWS"])
    worker = stack.worker(0)
    try:
        worker.wait_ready()
        stop = threading.Event()
        producer = paced(feed, rate, stop)
        try:
            samples, failures = _sample_loop(worker, feed, due, warmup_s)
        finally:
            stop.set()
            producer.join()
        feed.flush()
        feed.close()
        result = verdict(f"R6 soak {soak_min:g} min @{rate:g}/s", stack.settings, feed.sent, timeout=600)
    finally:
        worker.stop()  # also when the harness itself fails, so no worker outlives the run
    result.failures.extend(failures)
    if len([s for s in samples if s.t_s >= warmup_s - 1e-6]) >= 2:
        figures = summarise(samples, warmup_s)
        result.extra.update(figures)
        growth = float(figures["rss_growth_pct"])  # type: ignore[arg-type]
        result.extra["note"] = (
            f"RSS {figures['rss_warmup_mb']} -> {figures['rss_end_mb']} MB ({growth:+.2f} %), max "
            f"{figures['rss_max_mb']} MB, {figures['cpu_ms_per_msg']} ms CPU/msg"
        )
        if growth >= GROWTH_LIMIT_PCT:
            result.failures.append(f"RSS grew {growth:.2f} % after the warm-up (limit {GROWTH_LIMIT_PCT:g} %)")
    else:
        result.failures.append("not enough samples after the warm-up")
    result.extra.update(warmup_min=warmup_min, soak_min=soak_min, rate=rate, sample_s=sample_s)
    result.extra["samples"] = [asdict(s) for s in samples]
    return result
