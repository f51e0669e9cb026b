"""A folder that feeds itself: `alphacut watch IN -o OUT` cuts out each file that lands in
IN (recursively) into the mirrored place under OUT, until it is told to stop.

A file is taken only once it is completely written. Its size and modification time must
hold still for `settle` seconds, and where the events say so (inotify's close-after-write,
on Linux) the writer must also have closed it, so a slow copy that pauses mid-file is not
taken half-written. Renamed-in files (``x.jpg.part`` → ``x.jpg``) are complete by then.
Temporary and hidden names are never taken. Events come from watchdog; `poll` (or a
failure to start the native observer) uses watchdog's polling observer instead, which
also sees writes made by other machines on a network filesystem.

At start it catches up on every file already there, and outputs that exist are skipped as
in a batch, so a restart loses nothing and repeats nothing. Each file goes through
`run_task`, the batch's own per-file function. After it: `done_dir` takes processed inputs
(or `delete_input` removes them) and `failed_dir` takes the bad ones, each mirrored.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MissingDependency, OptionsError
from ..imagefile import SUFFIXES
from ..options import RemoveOptions
from .plan import Task
from .run import BatchItem, ImageRemover, run_task

__all__ = ["WatchOptions", "Watcher", "is_temporary"]

log = logging.getLogger("alphacut.watch")

_TEMPORARY_SUFFIXES = (
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".tmp",
    ".temp",
    ".swp",
    "~",
)


def is_temporary(relative: Path) -> bool:
    """Names that are still being written or are not meant to be seen: hidden files and
    folders, and the partial names of browsers, downloaders and copy tools."""
    if any(part.startswith(".") for part in relative.parts):
        return True
    return relative.name.lower().endswith(_TEMPORARY_SUFFIXES)


@dataclass(frozen=True)
class WatchOptions:
    """done_dir: where processed inputs move (mirrored); delete_input: remove them instead;
    failed_dir: where inputs that failed move. settle: seconds a file must hold still.
    poll: seconds between scans with the polling observer (None: native events). jobs:
    files processed at once. overwrite: redo files whose output already exists."""

    done_dir: Path | None = None
    delete_input: bool = False
    failed_dir: Path | None = None
    settle: float = 1.0
    poll: float | None = None
    jobs: int = 1
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.done_dir is not None and self.delete_input:
            raise OptionsError("choose one of --done DIR and --delete-input")
        if self.settle < 0 or (self.poll is not None and self.poll <= 0) or self.jobs < 1:
            raise OptionsError("settle must be ≥ 0, poll > 0 and jobs ≥ 1")


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    still_since: float
    # The size when a writer last closed it (None: not seen closed). Size, not mtime:
    # `cp -p` closes, then sets an older mtime.
    closed_size: int | None


class Watcher:
    """Watches `input_dir`; `run()` blocks until `stop()` or `stopping` is set (both safe
    from a signal handler), then finishes the files in progress and returns. `report` gets
    each file's `BatchItem`."""

    def __init__(
        self,
        remover: ImageRemover,
        input_dir: Path,
        output_dir: Path,
        options: RemoveOptions,
        watch: WatchOptions,
        report: Callable[[BatchItem], None],
        stopping: threading.Event | None = None,
    ) -> None:
        self._remover = remover
        self._input = input_dir.resolve()
        self._output = output_dir.resolve()
        self._options = options
        self._watch = watch
        self._report = report
        self._suffix = SUFFIXES[options.output_format]
        aside = [self._output, watch.done_dir, watch.failed_dir]
        self._excluded = [p.resolve() for p in aside if p is not None]
        if not self._input.is_dir():
            raise OptionsError(f"{input_dir} is not a folder")
        if self._input in self._excluded:
            raise OptionsError("the watched folder cannot also be the output, done or failed one")
        self._lock = threading.Lock()
        self._seen: dict[Path, _Seen] = {}
        self._finished: dict[Path, tuple[int, int]] = {}  # left in place: (size, mtime_ns)
        self._running: set[Path] = set()
        self._stopping = stopping or threading.Event()
        self._reports_close = False

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        observer = self._start_observer()
        for path in self._scan(self._input):
            self._note(path, closed=True)
        pool = ThreadPoolExecutor(self._watch.jobs, thread_name_prefix="alphacut-watch")
        futures: set[Future[None]] = set()
        tick = min(0.2, self._watch.poll or 0.2)
        try:
            while not self._stopping.is_set():
                futures = {f for f in futures if not f.done()}
                for path in self._ready(limit=2 * self._watch.jobs - len(futures)):
                    futures.add(pool.submit(self._process, path))
                self._stopping.wait(tick)
        finally:
            observer.stop()
            pool.shutdown(wait=True, cancel_futures=True)  # the files in progress finish
            observer.join(timeout=10)

    # Noticing files.

    def _start_observer(self) -> Any:
        try:
            from watchdog.observers import Observer
            from watchdog.observers.polling import PollingObserver
        except ImportError:
            raise MissingDependency("watch needs watchdog: pip install 'alphacut[watch]'") from None
        handler = _Handler(self)
        if self._watch.poll is None:
            observer: Any = Observer()
            try:
                observer.schedule(handler, str(self._input), recursive=True)
                observer.start()
                self._reports_close = type(observer).__name__ == "InotifyObserver"
                return observer
            except OSError as exc:  # e.g. out of inotify watches
                log.warning("native file events unavailable (%s); polling instead", exc)
        observer = PollingObserver(timeout=self._watch.poll or 1.0)
        observer.schedule(handler, str(self._input), recursive=True)
        observer.start()
        return observer

    def _scan(self, folder: Path) -> list[Path]:
        found: list[Path] = []
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not self._skipped(Path(root) / d))
            found.extend(Path(root) / n for n in sorted(names) if not self._skipped(Path(root) / n))
        return found

    def _skipped(self, path: Path) -> bool:
        try:
            relative = path.relative_to(self._input)
        except ValueError:
            return True
        if is_temporary(relative):
            return True
        return any(path == p or p in path.parents for p in self._excluded)

    def note_event(self, path: Path, *, closed: bool = False, folder: bool = False) -> None:
        if folder:  # a folder moved in brings files no event named
            for inner in self._scan(path):
                self._note(inner, closed=True)
        else:
            self._note(path, closed=closed)

    def _note(self, path: Path, *, closed: bool) -> None:
        path = Path(os.path.abspath(path))
        if self._skipped(path):
            return
        closed_size = None
        if closed:
            try:
                closed_size = path.stat().st_size
            except OSError:
                return
        with self._lock:
            seen = self._seen.get(path)
            if seen is None:
                self._seen[path] = _Seen(-1, -1, time.monotonic(), closed_size)
            elif closed:
                seen.closed_size = closed_size

    def _ready(self, limit: int) -> list[Path]:
        now = time.monotonic()
        ready: list[Path] = []
        with self._lock:
            for path, seen in list(self._seen.items()):
                if len(ready) >= limit:
                    break
                if path in self._running:
                    continue
                try:
                    stat = path.stat()
                except OSError:
                    del self._seen[path]  # gone (moved away, deleted)
                    continue
                if (stat.st_size, stat.st_mtime_ns) != (seen.size, seen.mtime_ns):
                    seen.size, seen.mtime_ns, seen.still_since = (
                        stat.st_size,
                        stat.st_mtime_ns,
                        now,
                    )
                    continue
                if now - seen.still_since < self._watch.settle:
                    continue
                if self._reports_close and seen.closed_size != stat.st_size:
                    continue  # still open for writing
                del self._seen[path]
                if self._finished.get(path) == (stat.st_size, stat.st_mtime_ns):
                    continue  # done this run and left in place: not again unless it changes
                self._running.add(path)
                ready.append(path)
        return ready

    # Processing one file.

    def _process(self, path: Path) -> None:
        relative = path.relative_to(self._input)
        task = Task(path, self._output / relative.parent / (relative.stem + self._suffix))
        try:
            stat = path.stat()
            if not self._watch.overwrite and task.destination.exists():
                item = BatchItem(task, "skipped")
            else:
                item = run_task(self._remover, task, self._options)
            self._put_aside(path, relative, item)
            self._report(item)
            if path.exists():
                with self._lock:
                    self._finished[path] = (stat.st_size, stat.st_mtime_ns)
        except OSError as exc:  # moving aside failed: say so, keep watching
            log.error("%s: %s", path, exc)
        finally:
            with self._lock:
                self._running.discard(path)

    def _put_aside(self, path: Path, relative: Path, item: BatchItem) -> None:
        if item.status == "failed":
            if self._watch.failed_dir is not None:
                _move(path, self._watch.failed_dir / relative)
        elif self._watch.delete_input:
            path.unlink(missing_ok=True)
        elif self._watch.done_dir is not None:
            _move(path, self._watch.done_dir / relative)


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # never overwrite an earlier file of the same name: keep both
        target = target.with_name(f"{target.stem}.{time.strftime('%Y%m%d-%H%M%S')}{target.suffix}")
    shutil.move(str(source), str(target))


class _Handler:
    """watchdog's callbacks, reduced to 'this path may have a new file' notes."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: Any) -> None:
        kind = event.event_type
        folder = bool(event.is_directory)
        if kind in ("created", "modified"):
            if not folder:
                self._watcher.note_event(Path(event.src_path))
            elif kind == "created":
                self._watcher.note_event(Path(event.src_path), folder=True)
        elif kind == "closed":
            self._watcher.note_event(Path(event.src_path), closed=True)
        elif kind == "moved":
            self._watcher.note_event(Path(event.dest_path), closed=True, folder=folder)
