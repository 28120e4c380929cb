"""Trace hooks for one worker process (bench/latency_trace); inert unless SM_TRACE_FILE is set.

Python imports `sitecustomize` at start-up from the path; `python -m bench.latency_trace` puts
this folder first on the worker's PYTHONPATH. The hooks wrap, without changing behaviour: the
aiokafka fetcher (each fetch request and what it asked for), Faust's record conversion (when a
record reaches the event loop), the batch processor's prepare and commit, the publish and the
Redis write, and the consumer's offset commit. One JSON line per event, wall-clock times.
"""

import os

if os.environ.get("SM_TRACE_FILE"):
    import importlib
    import importlib.abc
    import json
    import sys
    import threading
    import time

    _lock = threading.Lock()
    _out = open(os.environ["SM_TRACE_FILE"], "a", buffering=1)  # noqa: SIM115 - open for the process's life

    def emit(kind, **fields):
        fields.update(k=kind, t=time.time())
        with _lock:
            _out.write(json.dumps(fields) + "\n")

    def _wrap_async(owner, name, kind, describe=lambda *args, **kwargs: {}):
        original = getattr(owner, name, None) if owner is not None else None
        if original is None:  # the code moved: trace what is still there, and say what is not
            sys.stderr.write(
                f"latency_trace: nothing to hook for {kind!r} ({getattr(owner, '__name__', owner)}.{name})\n"
            )
            return

        async def wrapped(*args, **kwargs):
            started = time.time()
            result = await original(*args, **kwargs)
            emit(kind, t0=started, **describe(*args, result=result))
            return result

        setattr(owner, name, wrapped)

    def _install():
        from aiokafka.consumer import fetcher
        from faust.transport.drivers import aiokafka as faust_aiokafka

        from stream_app.ingest import publishers
        from stream_app.pipeline import process

        def fetch(self, assignment, node_id, request, result):
            asked = [f"{topic}:{p[0]}" for topic, parts in request.topics for p in parts]
            return {"new": bool(result), "asked": asked}

        _wrap_async(fetcher.Fetcher, "_proc_fetch_request", "fetch", fetch)
        to_message = faust_aiokafka.Consumer._to_message

        def traced_to_message(self, tp, record):
            emit("record", tp=f"{tp.topic}:{tp.partition}", o=record.offset, ts=record.timestamp / 1000.0)
            return to_message(self, tp, record)

        faust_aiokafka.Consumer._to_message = traced_to_message
        positions = lambda records: [[r.topic, r.partition, r.offset] for r in records]  # noqa: E731
        _wrap_async(
            process.BatchProcessor, "prepare", "prepare", lambda self, batch, result: {"recs": positions(batch)}
        )
        _wrap_async(
            process.BatchProcessor, "commit", "commit", lambda self, p, result: {"recs": positions(p.events + p.dead)}
        )
        # The publish and the aggregate write, found on the processor whatever the layout calls them:
        # `publisher.publish` / `sink.apply`, or `scored.write` / `store.write`.
        commit = process.BatchProcessor.commit

        instrumented = set()

        async def instrumented_commit(self, prepared):
            if id(self) not in instrumented:
                instrumented.add(id(self))
                for attr, method, kind in (
                    ("publisher", "publish", "publish"),
                    ("scored", "write", "publish"),
                    ("sink", "apply", "redis"),
                    ("store", "write", "redis"),
                ):
                    target = getattr(self, attr, None)
                    if target is not None and hasattr(target, method):
                        _wrap_async(target, method, kind)
            return await commit(self, prepared)

        process.BatchProcessor.commit = instrumented_commit
        _wrap_async(faust_aiokafka.Consumer, "_commit", "offsets_commit")
        early = getattr(publishers, "EarlyPublisher", None) or getattr(publishers, "EarlySink", None)
        if early is not None:  # absent before issue 24's pipelining
            send_early = early.send_early

            def traced_send_early(self, *batches):
                emit("send_early", n=sum(len(b) for b in batches))
                return send_early(self, *batches)

            early.send_early = traced_send_early

    class _InstallBeforeTheApp(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "stream_app.ingest.app":
                sys.meta_path.remove(self)
                _install()
            return None

    sys.meta_path.insert(0, _InstallBeforeTheApp())
