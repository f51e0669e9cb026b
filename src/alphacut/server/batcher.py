"""Micro-batching: concurrent requests share one model run.

Workers decode and prepare their image, then hand the tensor to the batcher,
which waits up to `max_wait_s` for up to `max_batch` tensors and runs them as one
batch. On a GPU that multiplies throughput; on a CPU one image at a time is
faster, which is why the server leaves this off unless asked.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

import numpy as np

from ..models import Session

__all__ = ["MicroBatcher"]


class MicroBatcher:
    def __init__(
        self, session: Session, max_batch: int, max_wait_s: float, on_batch: object = None
    ) -> None:
        self.session = session
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: queue.Queue[tuple[np.ndarray, Future[np.ndarray]] | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._loop, name=f"alphacut-batch-{session.spec.name}", daemon=True
        )
        self._thread.start()

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """The model's output for one 1xCxHxW tensor, computed within some batch."""
        future: Future[np.ndarray] = Future()
        self._queue.put((tensor, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            deadline = time.monotonic() + self.max_wait_s
            while len(items) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                items.append(item)
            self._run(items)

    def _run(self, items: list[tuple[np.ndarray, Future[np.ndarray]]]) -> None:
        try:
            outputs = self.session.run(np.concatenate([tensor for tensor, _ in items]))
        except BaseException as exc:  # every waiting request must hear about the failure
            for _, future in items:
                future.set_exception(exc)
            return
        if callable(self._on_batch):
            self._on_batch(len(items))
        for index, (_, future) in enumerate(items):
            future.set_result(outputs[index : index + 1])
