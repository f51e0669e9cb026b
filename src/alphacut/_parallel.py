"""Strips of one large image processed on every core at once.

Resizing, compositing and compressing a 6-megapixel photo take longer than the
model itself, and each runs on one core while the other waits. Those steps are
independent row by row (or column by column), and Pillow, numpy and the deflate
libraries release the GIL, so cutting the image into strips and handing them to
threads gives the same bytes in about half the time. Small images stay on one
thread: for them the hand-off would cost more than it saves.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ._system import usable_cores

__all__ = ["PARALLEL_PIXELS", "run_parallel", "spans", "strip_count"]

# Below this many pixels one pass over an image takes a few milliseconds, about what
# waking a second thread costs.
PARALLEL_PIXELS = 1_500_000

Item = TypeVar("Item")
Result = TypeVar("Result")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def strip_count(pixels: int, length: int) -> int:
    """How many strips to cut `length` rows (or columns) covering `pixels` pixels into."""
    if pixels < PARALLEL_PIXELS:
        return 1
    return max(1, min(usable_cores(), length // 64))


def spans(length: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous (start, stop) ranges covering 0..length as evenly as possible."""
    bounds = [length * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts) if bounds[i] < bounds[i + 1]]


def run_parallel(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """`[function(item) for item in items]`, the items after the first offered to worker threads.

    The calling thread works too: it runs the first item, then takes back every item
    no worker has started yet. So when the workers are busy with another caller's
    strips this costs no more than running the items one after another.
    """
    if len(items) <= 1:
        return [function(item) for item in items]
    futures = [_executor().submit(function, item) for item in items[1:]]
    results = [function(items[0])]
    for item, future in zip(items[1:], futures, strict=True):
        results.append(function(item) if future.cancel() else future.result())
    return results


def _executor() -> ThreadPoolExecutor:
    # A forked child inherits the pool object but not its threads, so it makes its own.
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(
                max_workers=max(1, usable_cores() - 1), thread_name_prefix="alphacut-strip"
            )
            _pool_pid = os.getpid()
        return _pool
