"""A result cache: least recently used entries go first, bounded by total bytes."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from ..options import RemoveOptions

__all__ = ["ResultCache", "result_key"]


def result_key(data: bytes, model: str, options: RemoveOptions) -> str:
    """A digest of everything that determines the output: the input bytes, model and options."""
    digest = hashlib.sha256(data)
    digest.update(b"\0" + model.encode() + b"\0" + repr(options).encode())
    return digest.hexdigest()


class ResultCache:
    """Thread-safe LRU of encoded results. max_bytes=0 disables it; an entry larger than a
    quarter of the budget is never stored, so one huge result cannot flush everything."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, data: bytes, media_type: str) -> None:
        if self.max_bytes == 0 or len(data) > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old[0])
            self._items[key] = (data, media_type)
            self._size += len(data)
            while self._size > self.max_bytes:
                _, (evicted, _) = self._items.popitem(last=False)
                self._size -= len(evicted)
