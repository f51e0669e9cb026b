"""Run a planned batch on a thread pool (the local engine): one failure never stops the rest.

Each worker decodes, infers, composes, encodes and writes one file with `run_task`, the
per-file function the Ray engine and the watched folder call too, so their outputs and
failure lines cannot drift apart. ONNX Runtime and Pillow release the GIL for their heavy
work, so with one worker per core the decode and encode of one image overlap with
inference on another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from PIL import Image

from .._system import usable_cores
from ..errors import AlphacutError
from ..imagefile import DecodedImage, encode
from ..options import RemoveOptions
from ..storage import ObjectPath, location, write_whole
from .outputs import refuse_input_as_output
from .plan import Plan, Task

__all__ = [
    "BatchItem",
    "ImageRemover",
    "default_jobs",
    "describe_failure",
    "pending_tasks",
    "process_task",
    "run_batch",
    "run_task",
    "unmatched_items",
]


class ImageRemover(Protocol):
    """What a batch needs of a remover (`alphacut.Remover` is one): no import of it here,
    so the library's `Remover.remove_many` can use the batch runner without a circle."""

    def load(self) -> Any: ...

    def decode(self, data: Any, *, source: str | None = None) -> DecodedImage: ...

    def process(
        self, decoded: DecodedImage, options: RemoveOptions | None = None
    ) -> Image.Image: ...


log = logging.getLogger("alphacut.batch")

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class BatchItem:
    """The outcome of one task. error: the reason when status is "failed"."""

    task: Task
    status: Status
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0


def default_jobs() -> int:
    """One worker per usable core."""
    return usable_cores()


def run_batch(
    remover: ImageRemover,
    plan: Plan,
    options: RemoveOptions,
    *,
    overwrite: bool = False,
    jobs: int | None = None,
) -> Iterator[BatchItem]:
    """Yield a `BatchItem` per task, in completion order. At most 2 × jobs images are in
    flight, so memory stays bounded however large the batch. On Ctrl-C, pending tasks are
    cancelled and running ones finish their (atomic) writes before the interrupt propagates."""
    jobs = jobs or default_jobs()
    yield from unmatched_items(plan)
    remover.load()  # fail once, up front, if the model cannot load
    pending = pending_tasks(plan, overwrite)
    running: dict[Future[BatchItem], Task] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="alphacut")
    try:
        while True:
            while len(running) < 2 * jobs:
                task = next(pending, None)
                if task is None:
                    break
                if isinstance(task, BatchItem):
                    yield task
                    continue
                running[pool.submit(run_task, remover, task, options)] = task
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                running.pop(future)
                yield future.result()
    except KeyboardInterrupt:
        # Files already in the model finish and are reported, so the summary counts every
        # output on disk; the ones not yet started are dropped.
        pool.shutdown(wait=True, cancel_futures=True)
        for future in running:
            if not future.cancelled():
                yield future.result()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def pending_tasks(plan: Plan, overwrite: bool) -> Iterator[Task | BatchItem]:
    """The plan's tasks to run, in order, with a "skipped" item in place of each whose output
    is already there (unless `overwrite`), so a resumed run picks up where it stopped; a
    failed item for a task whose output store cannot even be asked."""
    listed = None
    if not overwrite:
        try:
            listed = plan.existing_outputs()
        except AlphacutError as exc:
            log.warning("cannot list the outputs (%s); asking for each", exc)
    for task in plan.tasks:
        if overwrite:
            yield task
            continue
        try:
            exists = task.destination in listed if listed is not None else task.destination.exists()
        except AlphacutError as exc:
            yield BatchItem(task, "failed", *describe_failure(exc, str(task.destination)))
            continue
        yield BatchItem(task, "skipped") if exists else task


def process_task(remover: ImageRemover, task: Task, options: RemoveOptions) -> None:
    """Decode, cut out, encode and atomically write one task; errors are raised. A task
    whose destination is its own source is refused (`OutputIsInput`) before it is read."""
    refuse_input_as_output([task.source], task.destination)
    if isinstance(task.source, ObjectPath):
        with task.source.open_read() as handle:
            decoded = remover.decode(handle, source=str(task.source))
    else:
        decoded = remover.decode(task.source, source=str(task.source))
    result = remover.process(decoded, options)
    write_whole(task.destination, encode(result, options, decoded.icc_profile))


def run_task(remover: ImageRemover, task: Task, options: RemoveOptions) -> BatchItem:
    """`process_task`, with every failure turned into a failed item naming its reason."""
    started = time.perf_counter()
    try:
        process_task(remover, task, options)
    except Exception as exc:  # MemoryError included: the batch must finish the other files
        reason, kind = describe_failure(exc, str(task.source))
        return BatchItem(task, "failed", reason, kind, time.perf_counter() - started)
    return BatchItem(task, "done", seconds=time.perf_counter() - started)


def describe_failure(exc: Exception, source: str) -> tuple[str, str]:
    """The reason and error type a failed file is reported with, from every engine."""
    if isinstance(exc, AlphacutError):
        return getattr(exc, "reason", str(exc)), exc.kind
    if isinstance(exc, MemoryError):
        return "out of memory", "MemoryError"
    log.debug("unexpected failure on %s", source, exc_info=exc)  # a bug
    return f"internal error: {type(exc).__name__}: {exc}", "InternalError"


def unmatched_items(plan: Plan) -> Iterator[BatchItem]:
    """A failed item for each input that matched no file."""
    for text, reason in plan.unmatched:
        yield BatchItem(Task(location(text), Path()), "failed", reason, "InputError")
