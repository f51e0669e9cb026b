"""A result cache: least recently used entries go first, bounded by total bytes."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from PIL import Image

from ..options import RemoveOptions

__all__ = ["KeptUpload", "ResultCache", "UploadCache", "result_key", "upload_key"]


def result_key(scope: str, reference: str, model: str, options: RemoveOptions) -> str:
    """A digest of everything that determines the output: the input (by its `upload_key`,
    so the upload is hashed once per request), the model and the options; and the API key's
    scope, so that a hit never tells one key what another uploaded."""
    digest = hashlib.sha256(scope.encode() + b"\0" + reference.encode())
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


@dataclass
class KeptUpload:
    """What the server keeps of an upload so that brush strokes need not send it again nor
    run the model again: the bytes, the model's masks and each automatic refinement."""

    data: bytes
    masks: list[Image.Image]
    automatic: dict[tuple[str, bool], list[Image.Image]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        pixels = sum(m.width * m.height for m in self.masks)
        return len(self.data) + pixels * (1 + len(self.automatic))


def upload_key(data: bytes) -> str:
    """The reference a client uses for an upload: the SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


class UploadCache:
    """Thread-safe LRU of `KeptUpload`s by (scope, reference, model), bounded by their
    bytes: an upload is found only under the API key's scope that sent it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str, str], KeptUpload] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, scope: str, reference: str, model: str) -> KeptUpload | None:
        with self._lock:
            item = self._items.get((scope, reference, model))
            if item is not None:
                self._items.move_to_end((scope, reference, model))
            return item

    def put(self, scope: str, reference: str, model: str, upload: KeptUpload) -> None:
        if self.max_bytes == 0 or upload.size > self.max_bytes // 4:
            return
        with self._lock:
            self._items[(scope, reference, model)] = upload
            self._items.move_to_end((scope, reference, model))
            while (
                sum(s.size for s in self._items.values()) > self.max_bytes and len(self._items) > 1
            ):
                self._items.popitem(last=False)
