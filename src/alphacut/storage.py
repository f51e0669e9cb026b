"""Files named by URL (``s3://bucket/key``, ``gs://…``, ``memory://…``) through fsspec.

A batch's inputs and outputs are each a local `Path` or an `ObjectPath`; the planner and
the per-file work treat both alike. Object stores get whole objects only: a result is
encoded completely in memory and then put in one request (a multipart upload, too, shows
nothing until it completes), so a reader never sees half an output. Other fsspec
filesystems get a temporary name and a rename. Credentials are fsspec's and the cloud
SDKs' own: the usual environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``…)
and config files.
"""

from __future__ import annotations

import contextlib
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeAlias

from ._extras import require
from .errors import InputError, MissingDependency, StorageError

__all__ = ["Location", "ObjectPath", "is_url", "location", "write_whole"]

# Object stores put an object whole or not at all, so no temporary name is needed.
_WHOLE_OBJECT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})


def is_url(text: str) -> bool:
    """True for ``scheme://…`` names other than ``file://`` (which is a local path)."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isidentifier() and scheme.lower() != "file"


@dataclass(frozen=True)
class ObjectPath:
    """One object (or prefix) in an fsspec filesystem. Only the URL is kept, so it pickles
    small and each process (a Ray actor, say) opens its own client from its own credentials."""

    url: str

    def __post_init__(self) -> None:
        if not is_url(self.url):
            raise InputError("not a storage URL (scheme://bucket/key)", source=self.url)

    @property
    def protocol(self) -> str:
        return self.url.partition("://")[0].lower()

    @property
    def key(self) -> str:
        """The path after the scheme, as fsspec names it (``bucket/prefix/name``)."""
        return self.url.partition("://")[2].rstrip("/")

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(f"{self.protocol}://{posixpath.dirname(self.key)}")

    def __truediv__(self, part: str | PurePosixPath | Path) -> ObjectPath:
        joined = posixpath.normpath(posixpath.join(self.key, PurePosixPath(part).as_posix()))
        return ObjectPath(f"{self.protocol}://{joined}")

    def __str__(self) -> str:
        return self.url

    def relative_key(self, root: ObjectPath) -> PurePosixPath:
        return PurePosixPath(posixpath.relpath(self.key, root.key))

    def exists(self) -> bool:
        return bool(self._call("check", self._fs().exists, self.key))

    def is_dir(self) -> bool:
        return bool(self._call("check", self._fs().isdir, self.key))

    def find(self) -> list[ObjectPath]:
        """Every object under this prefix, in name order."""
        keys = self._call("list", self._fs().find, self.key)
        return [ObjectPath(f"{self.protocol}://{k}") for k in sorted(keys)]

    def glob(self) -> list[ObjectPath]:
        """The objects (not prefixes) this URL's pattern matches, in name order."""
        found = self._call("list", lambda: self._fs().glob(self.key, detail=True))
        keys = [k for k, info in found.items() if info.get("type") != "directory"]
        return [ObjectPath(f"{self.protocol}://{k}") for k in sorted(keys)]

    @contextlib.contextmanager
    def open_read(self) -> Iterator[IO[bytes]]:
        """A seekable reader, so a decoder reads an image's header before its pixels."""
        try:
            handle = self._fs().open(self.key, "rb")
        except FileNotFoundError:
            raise InputError("no such object", source=self.url) from None
        except PermissionError:
            raise InputError("permission denied", source=self.url) from None
        except OSError as exc:
            raise StorageError(f"cannot read: {exc}", source=self.url) from exc
        with handle:
            yield handle

    def write_bytes(self, data: bytes) -> None:
        """Put `data` so that no reader ever sees part of it."""
        fs = self._fs()
        if self.protocol in _WHOLE_OBJECT_PROTOCOLS:
            self._call("write", fs.pipe_file, self.key, data)
            return
        temp = f"{self.key}.{uuid.uuid4().hex[:12]}.part"
        self._call("write", fs.pipe_file, temp, data)
        try:
            self._call("write", fs.mv, temp, self.key)
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm_file(temp)
            raise

    def _fs(self) -> Any:
        fsspec = require("fsspec", f"a {self.protocol}:// path")
        try:
            # fsspec caches one instance per protocol and options, so this is cheap.
            return fsspec.filesystem(self.protocol)
        except (ImportError, ValueError) as exc:
            raise MissingDependency(
                f"no filesystem for {self.protocol}:// ({exc}); for s3:// install "
                "'alphacut[storage]'"
            ) from exc

    def _call(self, action: str, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except PermissionError:
            raise StorageError(f"cannot {action}: permission denied", source=self.url) from None
        except FileNotFoundError as exc:
            raise StorageError(f"cannot {action}: not found ({exc})", source=self.url) from None
        except Exception as exc:  # the SDKs raise their own types for network failures
            raise StorageError(f"cannot {action}: {exc}", source=self.url) from exc


Location: TypeAlias = "Path | ObjectPath"


def location(text: str | Path) -> Path | ObjectPath:
    """A URL as an `ObjectPath`; anything else (``file://`` included) as a local `Path`."""
    if isinstance(text, Path):
        return text
    if is_url(text):
        return ObjectPath(text)
    return Path(text.removeprefix("file://"))


def write_whole(place: Path | ObjectPath, data: bytes) -> None:
    """Write `data` to a local path or an object so that no reader sees part of it."""
    if isinstance(place, ObjectPath):
        place.write_bytes(data)
    else:
        from .imagefile import atomic_write_bytes

        try:
            atomic_write_bytes(place, data)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StorageError(
                f"cannot write: {exc.filename} is a file, not a folder", source=str(place)
            ) from exc
        except OSError as exc:  # a read-only or full disk
            raise StorageError(f"cannot write: {exc.strerror or exc}", source=str(place)) from exc
