"""Write files so that a reader sees the whole file or nothing.

Data goes to a hidden temporary file in the target's directory and is renamed
over the target only when complete. An exception or Ctrl-C removes the temporary
file, so an interrupted run never leaves a half-written output behind, and a
resumed batch can trust that every output it finds is complete.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write_bytes", "atomic_writer"]


@contextlib.contextmanager
def atomic_writer(target: Path) -> Iterator[BinaryIO]:
    """A binary file object whose contents replace `target` when the block exits cleanly."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


@functools.cache
def _umask() -> int:
    # mkstemp creates files 0600; give outputs the permissions a plain open() would.
    current = os.umask(0o022)
    os.umask(current)
    return current


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Replace `target` with `data` atomically."""
    with atomic_writer(target) as handle:
        handle.write(data)
