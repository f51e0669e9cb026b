"""Video jobs: long work that outlives the request that asked for it.

State lives in SQLite in the state directory, one row per job, with the upload and the result
in a folder per job beside it. A job is queued, running, then done, failed or cancelled:

- a bounded queue: when it is full, `submit` raises Overloaded (503 with Retry-After);
- one worker thread runs the jobs in order, writing progress (frames, fps, ETA) as it goes;
- a restart finds the jobs a crash interrupted: running ones are marked failed with the
  reason, queued ones queue again, finished results stay until their time to live;
- results older than `ttl_s` are deleted, and the oldest finished ones go first when the
  folder would pass its disk budget; past it even then, new jobs get 503.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AlphacutError, InferenceTimeout, Overloaded, VideoTooLarge
from .redact import public_message

__all__ = ["MEDIA_TYPES", "JobRequest", "JobStore"]

log = logging.getLogger("alphacut.server.jobs")

MEDIA_TYPES = {
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mp4": "video/mp4",
    "gif": "image/gif",
}
_FINISHED = ("done", "failed", "cancelled")
_PROGRESS_EVERY_S = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    name TEXT NOT NULL,
    format TEXT NOT NULL,
    request TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL DEFAULT 0,
    fps REAL,
    error_type TEXT,
    error_message TEXT,
    result_bytes INTEGER,
    owner TEXT NOT NULL DEFAULT ''
)
"""


@dataclass(frozen=True)
class JobRequest:
    """What a job does: the upload's name, the output container, and the options as the
    client sent them (kept as text so that a restart can run the job again)."""

    name: str
    format: str
    params: dict[str, str]
    frames_expected: int = 0


# (upload, destination, request, progress) -> frames written
Runner = Callable[[Path, Path, JobRequest, Callable[[int, int], None]], int]


class _Cancelled(Exception):
    """Raised inside a running job from its progress callback once DELETE was asked."""


class JobStore:
    """`runner(upload, destination, request, progress)` does the work of one job; it is
    called on the worker thread, and `progress(done, expected)` raises when the job is
    cancelled, so the runner's own clean-up (no partial output) happens."""

    def __init__(
        self,
        folder: Path,
        runner: Runner,
        *,
        queue_size: int = 4,
        ttl_s: float = 24 * 3600,
        disk_bytes: int = 4 << 30,
        job_seconds: float | None = None,
        owner_share: int | None = None,
        on_finish: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = folder
        self._runner = runner
        self._on_finish = on_finish
        self._queue_size = queue_size
        self._ttl_s = ttl_s
        self._disk_bytes = disk_bytes
        self._job_seconds = job_seconds
        self._owner_share = owner_share
        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / "jobs.sqlite", check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._cancelled: set[str] = set()
        self._queue: queue.Queue[str | None] = queue.Queue()
        with self._lock, self._db:
            self._db.execute(_SCHEMA)
            columns = {r["name"] for r in self._db.execute("PRAGMA table_info(jobs)")}
            if "owner" not in columns:  # a state folder from before jobs had owners
                self._db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
            self._db.execute(
                "UPDATE jobs SET state='failed', finished=?, error_type='Interrupted', "
                "error_message='the server stopped while this job was running; send it again' "
                "WHERE state='running'",
                (time.time(),),
            )
            waiting = self._db.execute(
                "SELECT id FROM jobs WHERE state='queued' ORDER BY created"
            ).fetchall()
        for row in waiting:
            self._queue.put(row["id"])
        self.sweep()
        self._worker = threading.Thread(target=self._work, name="alphacut-jobs", daemon=True)
        self._worker.start()

    # ---- the client's side -------------------------------------------------------------

    def submit(self, upload: Path, request: JobRequest, owner: str = "") -> str:
        """Queue a job for the file at `upload`, which moves into the job's folder. `owner`:
        the API key's scope; only it can see the job, and with `owner_share` it may hold
        no more than that many of the queued and running jobs."""
        self.sweep(room=upload.stat().st_size)
        with self._lock:
            waiting = self._count("state IN ('queued', 'running')")
            if waiting >= self._queue_size + 1:
                raise Overloaded(f"the video queue is full ({self._queue_size} waiting)")
            share = self._owner_share
            if share is not None and owner:
                own = self._count("state IN ('queued', 'running') AND owner=?", owner)
                if own >= share:
                    raise Overloaded(
                        f"this API key has {own} video jobs queued or running, its share of "
                        "the queue; wait for one to finish"
                    )
            if self._disk_used() + upload.stat().st_size > self._disk_bytes:
                raise Overloaded("the video results use all the disk allowed; try later")
            job = uuid.uuid4().hex
            home = self.folder / job
            home.mkdir()
            shutil.move(str(upload), home / "input")
            with self._db:
                self._db.execute(
                    "INSERT INTO jobs (id, state, name, format, request, created, frames_total, "
                    "owner) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                    (job, request.name, request.format, json.dumps(request.params),
                     time.time(), request.frames_expected, owner),
                )  # fmt: skip
        self._queue.put(job)
        return job

    def get(self, job: str, owner: str = "") -> dict[str, Any] | None:
        """The job's state, None if there is none of `owner`'s by that id."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE id=? AND owner=?", (job, owner)
            ).fetchone()
        return None if row is None else _describe(row)

    def result(self, job: str, owner: str = "") -> Path | None:
        """The finished output's path, None unless `owner`'s job is done."""
        found = self.get(job, owner)
        if found is None or found["state"] != "done":
            return None
        path = self.folder / job / f"result.{found['format']}"
        return path if path.is_file() else None

    def cancel(self, job: str, owner: str = "") -> dict[str, Any] | None:
        """Stop a queued or running job, or delete a finished one; None if `owner` has no
        such job."""
        found = self.get(job, owner)
        if found is None:
            return None
        if found["state"] in _FINISHED:
            with self._lock, self._db:
                self._db.execute("DELETE FROM jobs WHERE id=?", (job,))
            shutil.rmtree(self.folder / job, ignore_errors=True)
            return {**found, "state": "deleted"}
        with self._lock:
            self._cancelled.add(job)
            with self._db:
                self._db.execute(
                    "UPDATE jobs SET state='cancelled', finished=? WHERE id=? AND state='queued'",
                    (time.time(), job),
                )
        return {**found, "state": "cancelled"}

    def queued(self) -> int:
        with self._lock:
            return self._count("state IN ('queued', 'running')")

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)
        with self._lock:
            self._db.close()

    # ---- housekeeping ------------------------------------------------------------------

    def sweep(self, room: int = 0) -> None:
        """Delete expired results, then the oldest finished ones while the disk used (plus
        `room` for an upload on its way in) is over the budget."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, finished FROM jobs WHERE state IN ('done', 'failed', 'cancelled') "
                "ORDER BY finished"
            ).fetchall()
            now, used = time.time(), self._disk_used()
            for row in rows:
                expired = (row["finished"] or now) < now - self._ttl_s
                if not expired and used + room <= self._disk_bytes:
                    continue
                used -= _size(self.folder / row["id"])
                shutil.rmtree(self.folder / row["id"], ignore_errors=True)
                with self._db:
                    self._db.execute("DELETE FROM jobs WHERE id=?", (row["id"],))

    def _disk_used(self) -> int:
        """The jobs' files; uploads still arriving (in incoming/) are counted as they join."""
        return sum(_size(p) for p in self.folder.iterdir() if p.is_dir() and p.name != "incoming")

    def _count(self, where: str, *values: str) -> int:
        found = self._db.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", values).fetchone()
        return int(found[0])

    # ---- the worker --------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._run(job)
            except Exception:  # never let one job stop the worker
                log.exception("video job %s failed unexpectedly", job)

    def _run(self, job: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job,)).fetchone()
            if row is None or row["state"] != "queued" or job in self._cancelled:
                self._cancelled.discard(job)
                return
            started = time.time()
            with self._db:
                self._db.execute(
                    "UPDATE jobs SET state='running', started=? WHERE id=?", (started, job)
                )
        request = JobRequest(row["name"], row["format"], json.loads(row["request"]))
        home = self.folder / job
        last = 0.0

        def progress(done: int, expected: int) -> None:
            nonlocal last
            if job in self._cancelled:
                raise _Cancelled
            now = time.monotonic()
            if now - last >= _PROGRESS_EVERY_S:
                last = now
                self._update(job, done, expected, done / max(time.time() - started, 1e-6))
                self._check_budgets(started)

        destination = home / f"result.{request.format}"
        try:
            try:
                frames = self._runner(home / "input", destination, request, progress)
            finally:  # before the job's state changes, so no one sees it finished with it
                with contextlib.suppress(OSError):
                    (home / "input").unlink()
        except _Cancelled:
            self._finish(job, "cancelled")
            shutil.rmtree(home, ignore_errors=True)
            return
        except AlphacutError as exc:
            self._finish(job, "failed", exc.kind, public_message(exc, reason=True))
            return
        except Exception as exc:
            log.exception("video job %s", job)
            self._finish(job, "failed", "InternalError", f"internal error ({type(exc).__name__})")
            return
        self._finish(job, "done", size=destination.stat().st_size, frames=frames)
        self.sweep()  # the new result may leave older ones over the budget

    def _check_budgets(self, started: float) -> None:
        """Stop a running job (its partial output is removed by the runner) once it has run
        past the time allowed, or once the jobs' files, its own output as it is written
        included, pass the disk budget."""
        if self._job_seconds is not None and time.time() - started > self._job_seconds:
            raise InferenceTimeout(
                f"the job ran past the server's limit of {self._job_seconds:g} s a video "
                "(alphacut serve --video-job-seconds)"
            )
        if self._disk_used() > self._disk_bytes:
            self.sweep()  # older finished results make room first
        if self._disk_used() > self._disk_bytes:
            raise VideoTooLarge(
                f"the job's output passed the server's disk budget for video "
                f"({self._disk_bytes / 2**20:g} MB, alphacut serve --video-disk-mb)"
            )

    def _update(self, job: str, done: int, expected: int, fps: float) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE jobs SET frames_done=?, frames_total=MAX(frames_total, ?), fps=? "
                "WHERE id=?",
                (done, expected, fps, job),
            )

    def _finish(
        self,
        job: str,
        state: str,
        error_type: str | None = None,
        message: str | None = None,
        size: int | None = None,
        frames: int | None = None,
    ) -> None:
        now = time.time()
        with self._lock:
            self._cancelled.discard(job)
            with self._db:
                self._db.execute(
                    "UPDATE jobs SET state=?, finished=?, error_type=?, error_message=?, "
                    "result_bytes=? WHERE id=?",
                    (state, now, error_type, message, size, job),
                )
                if frames is not None:
                    self._db.execute(
                        "UPDATE jobs SET frames_done=?, frames_total=?, "
                        "fps=? / MAX(? - started, 1e-6) WHERE id=?",
                        (frames, frames, frames, now, job),
                    )
        if self._on_finish is not None:
            self._on_finish(state)


def _describe(row: sqlite3.Row) -> dict[str, Any]:
    done, total, fps = row["frames_done"], row["frames_total"], row["fps"]
    eta = (total - done) / fps if row["state"] == "running" and fps and total > done else None
    described: dict[str, Any] = {
        "id": row["id"],
        "state": row["state"],
        "name": row["name"],
        "format": row["format"],
        "created": row["created"],
        "started": row["started"],
        "finished": row["finished"],
        "progress": {
            "frames": done,
            "total": total or None,
            "fraction": min(1.0, done / total) if total else None,
            "fps": round(fps, 2) if fps else None,
            "eta_s": round(eta, 1) if eta is not None else None,
        },
        "result_bytes": row["result_bytes"],
    }
    if row["error_type"]:
        described["error"] = {"type": row["error_type"], "message": row["error_message"]}
    return described


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
