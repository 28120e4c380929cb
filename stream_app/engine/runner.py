"""Inference off the event loop, in two pipelined stages behind bounded queues.

Stage 1 tokenizes in a worker thread; stage 2 runs the forward pass and post-processing
in another. Both queues are bounded, so when the model falls behind, `classify_batch`
callers wait at `put()`: the stream feels backpressure instead of growing memory.

`swap` replaces the classifier between jobs: a job takes the classifier when its tokenizing
starts and keeps it through its forward pass, so each batch is scored by one model, whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stream_app.engine.staged import StagedClassifier
from stream_app.engine.types import ModelInfo, Sentiment, resolve_domains

_STOP = object()


class InferenceRunner:
    """Implements `AsyncClassifier` over a `StagedClassifier`. Start it inside a running loop."""

    def __init__(
        self,
        classifier: StagedClassifier,
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

    def swap(self, classifier: StagedClassifier) -> StagedClassifier:
        """Jobs not yet tokenizing use `classifier`; jobs in flight finish on the old one,
        which is returned. One assignment on the event loop: atomic for the stages."""
        old, self.classifier = self.classifier, classifier
        return old

    async def classify_batch(self, texts: Sequence[str], domains: Sequence[str] | None = None) -> list[Sentiment]:
        return (await self.classify_versioned(texts, domains))[0]

    async def classify_versioned(
        self, texts: Sequence[str], domains: Sequence[str] | None = None
    ) -> tuple[list[Sentiment], ModelInfo]:
        """The results and the identity of the model that produced them (see `swap`).
        `domains[i]` names the head for `texts[i]` (`None`: all `DEFAULT_DOMAIN`); checked here,
        so a bad list fails this caller at once instead of a job inside the stages."""
        checked = None if domains is None else resolve_domains(len(texts), domains)
        if not texts:
            return [], self.classifier.info
        future: asyncio.Future[tuple[list[Sentiment], ModelInfo]] = asyncio.get_running_loop().create_future()
        await self._incoming.put((list(texts), checked, future))
        return await future

    async def _tokenize_stage(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._incoming.get()
            if job is _STOP:
                await self._tokenized.put(_STOP)
                return
            texts, domains, future = job
            classifier = self.classifier  # this job's model, from tokenizing to post-processing
            try:
                started = time.monotonic()
                # Without domains, the one-argument call: every text is DEFAULT_DOMAIN either way,
                # and a StagedClassifier written before domains existed keeps working.
                args = (texts,) if domains is None else (texts, domains)
                slices = await loop.run_in_executor(self._tokenize_pool, classifier.tokenize, *args)
                self._on_stage("tokenize", time.monotonic() - started)
            except Exception as exc:  # a tokenizer bug must fail the caller, not the stage
                if not future.done():
                    future.set_exception(exc)
                continue
            await self._tokenized.put((len(texts), slices, future, classifier))

    async def _forward_stage(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._tokenized.get()
            if job is _STOP:
                return
            count, slices, future, classifier = job
            try:
                started = time.monotonic()
                result = await loop.run_in_executor(self._forward_pool, _forward, classifier, count, slices)
                self._on_stage("forward", time.monotonic() - started)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            if not future.done():
                future.set_result((result, classifier.info))


def _forward(classifier: StagedClassifier, count: int, slices: Any) -> list[Sentiment]:
    return classifier.postprocess(count, classifier.forward(slices))
