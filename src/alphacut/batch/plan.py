"""Turn CLI-style inputs (files, folders, globs, storage URLs) into (source, destination) tasks."""

from __future__ import annotations

import glob
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import OutputIsInput
from ..imagefile import SUFFIXES
from ..options import RemoveOptions
from ..storage import ObjectPath, is_url, location

__all__ = ["Plan", "Task", "plan_batch"]

_MAGIC = ("*", "?", "[")


@dataclass(frozen=True)
class Task:
    """One input file and where its result goes: each a local path or an object URL."""

    source: Path | ObjectPath
    destination: Path | ObjectPath


@dataclass
class Plan:
    """The tasks of a batch, plus inputs that matched no file (each with a reason), inputs
    left out because they are the output folder itself, and the output folder."""

    tasks: list[Task] = field(default_factory=list)
    unmatched: list[tuple[str, str]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    output: Path | ObjectPath | None = None

    def existing_outputs(self) -> frozenset[ObjectPath] | None:
        """The objects already under an object-store output, from one listing: a resumed run
        of a million files must not ask for each one (None: a local output, ask per file)."""
        if not isinstance(self.output, ObjectPath):
            return None
        return frozenset(self.output.find())  # a prefix with nothing under it lists empty


def plan_batch(
    inputs: list[str], output_dir: Path | ObjectPath | str, options: RemoveOptions
) -> Plan:
    """Expand `inputs` and map each file to `output_dir`, mirroring folder structure.

    A folder (or an object prefix, ``s3://bucket/photos/``) contributes every file below
    it (hidden names skipped), a glob every file it matches (``**`` recurses); paths are
    mirrored relative to the folder or to the glob's fixed prefix. Files that would land
    on the same output name (``a.jpg`` and ``a.png``) keep their full names (``a.jpg.png``,
    ``a.png.png``). The output folder is never read as input: an input that is the output
    folder (as ``photos/*`` names ``photos/out``) is left out, and walks and globs do not
    enter it. Raises `OutputIsInput` when an output would land on an input file, or when
    every input was the output folder, before anything is written.
    """
    suffix = SUFFIXES[options.output_format]
    output = location(output_dir) if isinstance(output_dir, str) else output_dir
    if isinstance(output, Path):
        output = output.resolve()
    plan = Plan(output=output)
    # (source, path relative to the output folder, with the input's suffix)
    pairs: list[tuple[Path | ObjectPath, PurePosixPath | Path]] = []
    seen: set[Path | ObjectPath] = set()
    for text in inputs:
        if _is_output(text, output):
            plan.left_out.append(text)
            continue
        found = _expand_url(text, output) if is_url(text) else _expand(text, output)
        if isinstance(found, str):
            plan.unmatched.append((text, found))
            continue
        for source, relative in found:
            key = source.resolve() if isinstance(source, Path) else source
            if key not in seen:
                seen.add(key)
                pairs.append((source, relative))
    by_target: defaultdict[PurePosixPath | Path, list[int]] = defaultdict(list)
    for index, (_, relative) in enumerate(pairs):
        by_target[relative.with_suffix("")].append(index)
    for source, relative in pairs:
        clash = len(by_target[relative.with_suffix("")]) > 1
        name = relative.name if clash else relative.with_suffix("").name
        plan.tasks.append(Task(source, output / relative.parent / (name + suffix)))
    _refuse_overlap(plan, seen)
    return plan


def _is_output(text: str, output: Path | ObjectPath) -> bool:
    if is_url(text):
        return isinstance(output, ObjectPath) and ObjectPath(text).key == output.key
    return isinstance(output, Path) and _same(Path(text.removeprefix("file://")), output)


def _refuse_overlap(plan: Plan, sources: set[Path | ObjectPath]) -> None:
    if plan.left_out and not plan.tasks and not plan.unmatched:
        raise OutputIsInput(
            "is the output folder: its files are results, not inputs (choose another -o)",
            destination=str(plan.output),
        )
    for task in plan.tasks:
        if task.destination in sources:
            raise OutputIsInput(
                f"is an input; writing {task.source}'s result there would destroy it "
                "(choose another output folder)",
                destination=str(task.destination),
            )


def _expand_url(
    text: str, output: Path | ObjectPath
) -> list[tuple[Path | ObjectPath, PurePosixPath | Path]] | str:
    root = ObjectPath(text)
    if any(ch in root.key for ch in _MAGIC):
        base = ObjectPath(f"{root.protocol}://{_glob_base(root.key).as_posix()}")
        matches = [m for m in root.glob() if not _hidden(m.relative_key(base))]
        found = [m for m in matches if not _below(m, output)]
        if not found:
            return "the pattern matches no object"
        return [(m, m.relative_key(base)) for m in found]
    if root.is_dir():
        objects = [o for o in root.find() if not _hidden(o.relative_key(root))]
        return [(o, o.relative_key(root)) for o in objects if not _below(o, output)]
    if root.exists():
        return [(root, PurePosixPath(root.name))]
    return "no such object or prefix"


def _hidden(relative: PurePosixPath) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _below(item: ObjectPath, output: Path | ObjectPath) -> bool:
    return isinstance(output, ObjectPath) and (item.key + "/").startswith(output.key + "/")


def _expand(
    text: str, output_dir: Path | ObjectPath
) -> list[tuple[Path | ObjectPath, PurePosixPath | Path]] | str:
    text = text.removeprefix("file://")
    path = Path(text)
    if any(ch in text for ch in _MAGIC) and not path.exists():
        base = _glob_base(text)
        matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
        files = [m for m in matches if m.is_file() and not _inside_local(m, output_dir)]
        if not files:
            return "the pattern matches no file"
        return [(m, m.relative_to(base) if _inside(m, base) else Path(m.name)) for m in files]
    if path.is_dir():
        return [(f, f.relative_to(path)) for f in _walk(path, output_dir)]
    if path.exists() or path.is_symlink():
        return [(path, Path(path.name))]
    return "no such file or directory"


def _inside_local(path: Path, output_dir: Path | ObjectPath) -> bool:
    return isinstance(output_dir, Path) and _inside(path, output_dir)


def _walk(folder: Path, output_dir: Path | ObjectPath) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and not (isinstance(output_dir, Path) and _same(root_path / d, output_dir))
        )
        files.extend(root_path / n for n in sorted(names) if not n.startswith("."))
    return files


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if any(ch in part for ch in _MAGIC):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
