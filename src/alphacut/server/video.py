"""Video over HTTP, as jobs: POST /api/video answers 202 with a job id, GET /api/jobs/{id}
tells its state and progress, GET /api/jobs/{id}/result gives the file, DELETE cancels.

The upload is checked before it is queued (a video at all, within the size, length and
frame limits), so a bad file gets its 4xx at once rather than as a failed job later.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import UploadFile

from .._extras import installed
from ..errors import InputError, JobNotFound, JobNotReady, MissingDependency, OptionsError
from ..options import Limits, RemoveOptions, options_from_params
from ..video.options import VIDEO_SETTINGS
from .inference import SERVER_MATTING_HINT
from .jobs import MEDIA_TYPES, JobRequest, JobStore
from .metrics import Metrics
from .routes import request_scope, require_api_key
from .settings import ServerSettings

if TYPE_CHECKING:
    from ..video import VideoOptions
    from .inference import Inference

__all__ = ["LazyJobs", "make_job_store", "video_router"]

# A server path is not a client's to choose; image encodings mean nothing for a video.
_EXCLUDED = frozenset(
    {
        "background_image",
        "hints",
        "output_format",
        "png_compress_level",
        "quality",
        "keep_icc_profile",
    }
)
_VIDEO_FIELDS = frozenset(row.name for row in VIDEO_SETTINGS if row.over_http)


def _jobs(request: Request) -> JobStore:
    jobs: JobStore | None = request.app.state.jobs.get()
    if jobs is None:
        raise MissingDependency(
            "video needs PyAV and OpenCV on the server: pip install 'alphacut[video]'"
        )
    return jobs


class LazyJobs:
    """The app's job store, opened at start-up or on first use (an app built for a test
    that never touches video opens no database and starts no thread)."""

    def __init__(self, app_state: Any, settings: ServerSettings, metrics: Metrics) -> None:
        self._args = (app_state, settings, metrics)
        self._store: JobStore | None = None
        self._opened = False
        self._lock = threading.Lock()

    def get(self) -> JobStore | None:
        with self._lock:
            if not self._opened:
                self._store = make_job_store(*self._args)
                self._opened = True
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store, self._opened = None, False


def _limits(settings: ServerSettings) -> Limits:
    return Limits(
        max_pixels=settings.video_max_pixels,
        max_frames=settings.video_max_frames,
        max_seconds=settings.video_max_seconds,
        max_matting_pixels=settings.max_matting_pixels,
        raise_hint="the server's limit: alphacut serve --video-max-pixels",
        matting_hint=SERVER_MATTING_HINT,
    )


def _parse(params: dict[str, str], default_model: str) -> tuple[str, RemoveOptions, VideoOptions]:
    """The model, the image options and the video options a job's parameters ask for: the
    video fields a client may send are those of the video settings table, as the CLI's."""
    from ..video.options import video_options, video_params

    fmt = params.get("format", "webm").strip().lower()
    if fmt not in MEDIA_TYPES:  # a server sends files, never folders of frames
        raise OptionsError(f"format must be one of {', '.join(MEDIA_TYPES)}, not {fmt!r}")
    chosen = video_params({**params, "format": fmt})
    rest = {k: v for k, v in params.items() if k not in (*_VIDEO_FIELDS, "model")}
    options = options_from_params(rest, exclude=_EXCLUDED)
    return params.get("model") or default_model, options, video_options(chosen)


def make_job_store(app_state: Any, settings: ServerSettings, metrics: Metrics) -> JobStore | None:
    """The app's job store, None when PyAV is missing (video answers 501 then)."""
    if not installed("av", "cv2"):
        return None
    from ..video.smooth import require_cv2

    require_cv2().setNumThreads(1)  # the model's threads have the cores

    def run(upload: Path, destination: Path, job: JobRequest, progress: Any) -> int:
        model, options, video = _parse(job.params, settings.default_model)
        inference: Inference = app_state.inference
        remover = inference.remover(inference.session(model), _limits(settings))
        report = remover.remove_video(
            upload, destination, options, video, jobs=settings.workers, progress=progress
        )
        metrics.video_frames.inc(report.frames)
        return report.frames

    return JobStore(
        settings.jobs_dir,
        run,
        queue_size=settings.video_queue_size,
        ttl_s=settings.video_ttl_s,
        disk_bytes=settings.video_disk_bytes,
        job_seconds=settings.video_job_seconds,
        owner_share=settings.video_queue_per_key if settings.api_keys else None,
        on_finish=lambda state: metrics.video_jobs.labels(state).inc(),
    )


def _probe(path: Path, name: str, limits: Limits, options: RemoveOptions) -> int:
    """Open the upload as a video under the limits, which its frames must meet for the
    stages `options` ask for; its frame count (0 if unknown)."""
    from ..pipeline.runner import admit
    from ..video import VideoSource

    with VideoSource(path, limits) as video:
        info = video.info
    admit((info.width, info.height), options, limits, name)
    if info.frames:
        return info.frames
    return round(info.duration * float(info.rate)) if info.duration else 0


def _links(job: str) -> dict[str, str]:
    return {"status_url": f"/api/jobs/{job}", "result_url": f"/api/jobs/{job}/result"}


video_router = APIRouter(prefix="/api", dependencies=[Depends(require_api_key)])


@video_router.post("/video", status_code=202)
async def submit_video(request: Request) -> JSONResponse:
    """Queue a video: multipart field `file` plus options (`format` webm, mov or mp4;
    `smooth`, `audio`; and the image options such as `model`, `bgcolor`, `only_mask`)."""
    jobs = _jobs(request)
    settings: ServerSettings = request.app.state.settings
    params = dict(request.query_params)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InputError("send the video as multipart field 'file'")
    form = await request.form(max_files=1, max_fields=64)
    upload = form.get("file")
    params.update({k: v for k, v in form.items() if k != "file" and isinstance(v, str)})
    if not isinstance(upload, UploadFile):
        raise InputError("the multipart body has no file field named 'file'")
    name = Path(upload.filename or "upload").name or "upload"
    model, options, video = _parse(params, settings.default_model)
    request.app.state.inference.check_models(options)
    fmt = str(video.format)
    from ..video.sink import check_opaque

    check_opaque(fmt, options)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    incoming = jobs.folder / "incoming"
    incoming.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=incoming, delete=False) as spool:
        path = Path(spool.name)
        await loop.run_in_executor(None, shutil.copyfileobj, upload.file, spool, 1 << 20)
    try:
        if path.stat().st_size == 0:
            raise InputError("the upload is empty (0 bytes)", source=name)
        frames = await loop.run_in_executor(
            None, functools.partial(_probe, path, name, _limits(settings), options)
        )
        params = {**params, "model": model, "format": fmt}
        job = await loop.run_in_executor(
            None, jobs.submit, path, JobRequest(name, fmt, params, frames), request_scope(request)
        )
    finally:
        path.unlink(missing_ok=True)  # moved into the job's folder unless refused
    return JSONResponse(
        {"id": job, "state": "queued", **_links(job)},
        status_code=202,
        headers={"Location": f"/api/jobs/{job}"},
    )


@video_router.get("/jobs/{job}")
async def job_status(request: Request, job: str) -> dict[str, Any]:
    """A job's state, progress (frames, fraction, fps, ETA) and error, if any."""
    found = _jobs(request).get(job, request_scope(request))
    if found is None:
        raise _unknown(job)
    return {**found, **_links(job)}


@video_router.get("/jobs/{job}/result")
async def job_result(request: Request, job: str) -> FileResponse:
    """The finished video; 409 while the job is not done."""
    jobs = _jobs(request)
    found = jobs.get(job, request_scope(request))
    if found is None:
        raise _unknown(job)
    path = jobs.result(job, request_scope(request))
    if path is None:
        raise JobNotReady(f"job {job} is {found['state']}, not done")
    stem = Path(found["name"]).stem or "video"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:100]
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[found["format"]],
        filename=f"{safe}.{found['format']}",
        content_disposition_type="inline",
    )


@video_router.delete("/jobs/{job}")
async def cancel_job(request: Request, job: str) -> dict[str, Any]:
    """Cancel a queued or running job, or delete a finished one and its file."""
    found = _jobs(request).cancel(job, request_scope(request))
    if found is None:
        raise _unknown(job)
    return found


def _unknown(job: str) -> JobNotFound:
    return JobNotFound(f"no job {job!r} (finished jobs are kept for a limited time)")
