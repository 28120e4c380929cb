"""Inference off the event loop, in two pipelined stages behind bounded queues.

Stage 1 tokenizes in a worker thread; stage 2 runs the forward pass and post-processing
in another. Both queues are bounded, so when the model falls behind, `classify_batch`
callers wait at `put()`: the stream feels backpressure instead of growing memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stream_app.engine.types import AnyStagedClassifier, Sentiment

_STOP = object()


class InferenceRunner:
    """Implements `AsyncClassifier` over a `StagedClassifier`. Start it inside a running loop."""

    def __init__(
        self,
        classifier: AnyStagedClassifier,
        queue_depth: int = 4,
        on_stage: Callable[[str, float], None] | None = None,
    ) -> None:
        self.classifier = classifier
        self._on_stage = on_stage or (lambda stage, seconds: None)
        self._incoming: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_depth)
        self._tokenized: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_depth)
        self._tokenize_pool = ThreadPoolExecutor(1, thread_name_prefix="sm-tokenize")
        self._forward_pool = ThreadPoolExecutor(1, thread_name_prefix="sm-forward")
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._tokenize_stage(), name="sm-tokenize"),
            asyncio.create_task(self._forward_stage(), name="sm-forward"),
        ]

    async def stop(self) -> None:
        await self._incoming.put(_STOP)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tokenize_pool.shutdown(wait=True)
        self._forward_pool.shutdown(wait=True)

    async def classify_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        if not texts:
            return []
        future: asyncio.Future[list[Sentiment]] = asyncio.get_running_loop().create_future()
        await self._incoming.put((list(texts), future))
        return await future

    async def _tokenize_stage(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._incoming.get()
            if job is _STOP:
                await self._tokenized.put(_STOP)
                return
            texts, future = job
            try:
                started = time.monotonic()
                slices = await loop.run_in_executor(self._tokenize_pool, self.classifier.tokenize, texts)
                self._on_stage("tokenize", time.monotonic() - started)
            except Exception as exc:  # a tokenizer bug must fail the caller, not the stage
                future.set_exception(exc)
                continue
            await self._tokenized.put((len(texts), slices, future))

    async def _forward_stage(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._tokenized.get()
            if job is _STOP:
                return
            count, slices, future = job
            try:
                started = time.monotonic()
                result = await loop.run_in_executor(self._forward_pool, self._forward, count, slices)
                self._on_stage("forward", time.monotonic() - started)
            except Exception as exc:
                future.set_exception(exc)
                continue
            if not future.done():
                future.set_result(result)

    def _forward(self, count: int, slices: Any) -> list[Sentiment]:
        return self.classifier.postprocess(count, self.classifier.forward(slices))
