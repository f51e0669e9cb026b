"""Turn CLI-style inputs (files, folders, globs) into (source, destination) tasks."""

from __future__ import annotations

import glob
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..imageio import SUFFIXES
from ..options import RemoveOptions

__all__ = ["Plan", "Task", "plan_batch"]

_MAGIC = ("*", "?", "[")


@dataclass(frozen=True)
class Task:
    """One input file and where its result goes."""

    source: Path
    destination: Path


@dataclass
class Plan:
    """The tasks of a batch, plus inputs that matched no file (each with a reason)."""

    tasks: list[Task] = field(default_factory=list)
    unmatched: list[tuple[str, str]] = field(default_factory=list)


def plan_batch(inputs: list[str], output_dir: Path, options: RemoveOptions) -> Plan:
    """Expand `inputs` and map each file to `output_dir`, mirroring folder structure.

    A folder contributes every regular file below it (hidden names skipped), a glob
    every file it matches (``**`` recurses); paths are mirrored relative to the
    folder or to the glob's fixed prefix. Files that would land on the same output
    name (``a.jpg`` and ``a.png``) keep their full names (``a.jpg.png``, ``a.png.png``).
    The output folder itself is never read as input.
    """
    suffix = SUFFIXES[options.output_format]
    output_dir = output_dir.resolve()
    plan = Plan()
    pairs: list[tuple[Path, Path]] = []  # (source, path relative to output_dir without suffix)
    seen: set[Path] = set()
    for text in inputs:
        found = _expand(text, output_dir)
        if isinstance(found, str):
            plan.unmatched.append((text, found))
            continue
        for source, relative in found:
            key = source.resolve()
            if key not in seen:
                seen.add(key)
                pairs.append((source, relative))
    by_target: defaultdict[Path, list[int]] = defaultdict(list)
    for index, (_, relative) in enumerate(pairs):
        by_target[relative.with_suffix("")].append(index)
    for source, relative in pairs:
        clash = len(by_target[relative.with_suffix("")]) > 1
        name = relative.name if clash else relative.with_suffix("").name
        plan.tasks.append(Task(source, output_dir / relative.parent / (name + suffix)))
    return plan


def _expand(text: str, output_dir: Path) -> list[tuple[Path, Path]] | str:
    path = Path(text)
    if any(ch in text for ch in _MAGIC) and not path.exists():
        base = _glob_base(text)
        matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
        files = [m for m in matches if m.is_file() and not _inside(m, output_dir)]
        if not files:
            return "the pattern matches no file"
        return [(m, m.relative_to(base) if _inside(m, base) else Path(m.name)) for m in files]
    if path.is_dir():
        return [(f, f.relative_to(path)) for f in _walk(path, output_dir)]
    if path.exists() or path.is_symlink():
        return [(path, Path(path.name))]
    return "no such file or directory"


def _walk(folder: Path, output_dir: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not _same(root_path / d, output_dir)
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
