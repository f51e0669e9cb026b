"""Where results may be written: the one rule `remove`, `video`, `watch` and the library follow.

1. An output never replaces an input, whatever the flags: a task whose output is its own
   source, or any other input of the run, is refused (`OutputIsInput`); so is an output
   folder that is an input folder.
2. A single named output (one input, ``-o cutout.png`` or ``-o clip.webm``) that already
   exists is refused before any work (`OutputExists`) unless ``--overwrite``. An empty
   folder is not an output yet, so ``-o frames/`` made beforehand is fine.
3. A batch (a folder, a glob, several inputs, a watched folder) skips outputs that exist,
   so an interrupted run resumes; ``--overwrite`` redoes them. A batch that writes nothing
   (every output was there already) says so and does not exit 0.
4. An output tree inside an input folder is never read back as input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import OutputExists, OutputIsInput
from ..storage import ObjectPath

__all__ = ["check_new_output", "output_taken", "refuse_input_as_output", "same_location"]


def same_location(a: Path | ObjectPath, b: Path | ObjectPath) -> bool:
    """True when `a` and `b` name one file or object (links and `..` resolved)."""
    if isinstance(a, ObjectPath) or isinstance(b, ObjectPath):
        return isinstance(a, ObjectPath) and isinstance(b, ObjectPath) and a.key == b.key
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, on Python < 3.13
        return False


def output_taken(destination: Path | ObjectPath) -> bool:
    """True when something is at `destination`: a file or object, or a folder with anything
    in it (an empty folder holds no earlier result)."""
    if isinstance(destination, ObjectPath):
        return destination.exists()
    if destination.is_dir():
        return any(destination.iterdir())
    return destination.exists() or destination.is_symlink()


def refuse_input_as_output(
    sources: Iterable[Path | ObjectPath], destination: Path | ObjectPath
) -> None:
    """Raise `OutputIsInput` when `destination` is one of `sources`."""
    for source in sources:
        if same_location(source, destination):
            raise OutputIsInput(
                "is an input; writing there would destroy it (choose another output)",
                destination=str(destination),
            )


def check_new_output(
    destination: Path | ObjectPath,
    *,
    sources: Iterable[Path | ObjectPath] = (),
    overwrite: bool = False,
) -> None:
    """The checks for a single named output, before any work: never an input, and not
    already there unless `overwrite`."""
    refuse_input_as_output(sources, destination)
    if not overwrite and output_taken(destination):
        if isinstance(destination, Path) and destination.is_dir():
            held = sum(1 for _ in destination.iterdir())
            raise OutputExists(
                f"is a folder that already holds {held} file{'s' if held != 1 else ''}, from an "
                "earlier run (perhaps an interrupted one); --overwrite replaces them, or "
                "choose an empty or new folder",
                destination=str(destination),
            )
        raise OutputExists("exists; --overwrite replaces it", destination=str(destination))
