"""Run a planned batch on a thread pool: one failure never stops the rest.

Each worker decodes, infers, composes, encodes and writes one file. ONNX Runtime
and Pillow release the GIL for their heavy work, so with one worker per core the
decode and encode of one image overlap with inference on another.
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
from ..imageio import DecodedImage, write_image
from ..options import RemoveOptions
from .plan import Plan, Task

__all__ = ["BatchItem", "ImageRemover", "default_jobs", "run_batch"]


class ImageRemover(Protocol):
    """What a batch needs of a remover (`alphacut.Remover` is one): no import of it here,
    so the library's `Remover.remove_many` can use the batch runner without a circle."""

    def load(self) -> Any: ...

    def decode(self, data: Path, *, source: str | None = None) -> DecodedImage: ...

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
    for text, reason in plan.unmatched:
        yield BatchItem(Task(Path(text), Path()), "failed", reason, "InputError")
    remover.load()  # fail once, up front, if the model cannot load
    pending = iter(plan.tasks)
    running: dict[Future[BatchItem], Task] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="alphacut")
    try:
        while True:
            while len(running) < 2 * jobs:
                task = next(pending, None)
                if task is None:
                    break
                if not overwrite and task.destination.exists():
                    yield BatchItem(task, "skipped")
                    continue
                running[pool.submit(_run_one, remover, task, options)] = task
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                running.pop(future)
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_one(remover: ImageRemover, task: Task, options: RemoveOptions) -> BatchItem:
    started = time.perf_counter()
    try:
        decoded = remover.decode(task.source, source=str(task.source))
        result = remover.process(decoded, options)
        write_image(task.destination, result, options, decoded.icc_profile)
    except AlphacutError as exc:
        reason = getattr(exc, "reason", str(exc))
        return BatchItem(task, "failed", reason, exc.kind, time.perf_counter() - started)
    except MemoryError:
        return BatchItem(
            task, "failed", "out of memory", "MemoryError", time.perf_counter() - started
        )
    except Exception as exc:  # a bug, but the batch must still finish the other files
        log.debug("unexpected failure on %s", task.source, exc_info=True)
        return BatchItem(
            task,
            "failed",
            f"internal error: {type(exc).__name__}: {exc}",
            "InternalError",
            time.perf_counter() - started,
        )
    return BatchItem(task, "done", seconds=time.perf_counter() - started)
