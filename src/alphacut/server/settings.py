"""Everything the HTTP service can be told, in one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .._system import thread_share, usable_cores
from ..errors import OptionsError
from ..models.registry import default_model
from ..options import DEFAULT_MAX_PIXELS, RuntimeOptions

__all__ = ["ServerSettings", "load_api_keys"]


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """Configuration of `create_app`.

    default_model: loaded at start-up; /readyz is 503 until it is.
    models: names clients may ask for (None: every registered model already in the cache).
    allow_downloads: whether a request may trigger a model download (off: only cached models).
    workers: inferences run at once; queue_size: requests allowed to wait beyond that, after
    which the answer is 503 with Retry-After. request_timeout_s: per-request limit (504).
    max_upload_bytes: larger bodies get 413 before they are read; body_timeout_s: an upload
    silent that long is refused (408). max_matting_pixels: the
    largest image (or video frame) alpha matting (`a=true`) may solve, 413 beyond (its
    memory grows with the image: about 0.6 GB a megapixel; None: no limit). cache_bytes: result cache
    size (0 turns it off). source_cache_bytes: uploads kept with their masks for
    POST /api/refine (0: every stroke sends its image again). api_keys: when non-empty, /api/*
    and /metrics need `Authorization: Bearer <key>` (/metrics not with metrics_public).
    cors_origins: allowed browser origins (empty: no CORS headers, the locked-down default);
    without API keys, a state-changing request from any other origin is refused (403).
    allowed_hosts: Host header names answered (421 for others; None: any).
    allow_url: enable GET /api/remove?url=… ; url_allow_networks: private CIDRs it may reach.
    max_batch: above 1, concurrent requests share model runs of up to this many images, each
    batch waiting at most batch_wait_ms for company (pays off on GPUs; CPUs are faster at 1).
    Video jobs (POST /api/video): state_dir holds their SQLite state, uploads and results
    (None: $ALPHACUT_CACHE_DIR/jobs); video_max_upload_bytes, video_max_seconds,
    video_max_frames and video_max_pixels bound what is accepted (413 beyond);
    video_queue_size jobs may wait (503 beyond), at most video_queue_per_key of them (queued
    or running) one API key's when keys are set (None: half the queue, at least one); a job
    runs at most video_job_seconds; results live video_ttl_s seconds, and all jobs' files
    together, outputs counted while they are written, stay under video_disk_bytes (a job
    that would pass it fails as VideoTooLarge).
    """

    default_model: str = field(default_factory=default_model)
    models: tuple[str, ...] | None = None
    allow_downloads: bool = False
    workers: int = field(default_factory=usable_cores)
    queue_size: int = 16
    request_timeout_s: float = 60.0
    max_upload_bytes: int = 25 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_matting_pixels: int | None = 1_000_000
    cache_bytes: int = 128 * 1024 * 1024
    source_cache_bytes: int = 256 * 1024 * 1024
    api_keys: tuple[str, ...] = ()
    metrics_public: bool = False
    body_timeout_s: float = 15.0
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] | None = None
    allow_url: bool = False
    url_max_bytes: int = 25 * 1024 * 1024
    url_timeout_s: float = 10.0
    url_allow_networks: tuple[str, ...] = ()
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    accept_licenses: tuple[str, ...] = ()
    max_batch: int = 1
    batch_wait_ms: float = 5.0
    retry_after_s: int = 2
    state_dir: Path | None = None
    video_max_upload_bytes: int = 512 * 1024 * 1024
    video_max_seconds: float = 600.0
    video_max_frames: int = 36_000
    video_max_pixels: int = 3840 * 2160
    video_queue_size: int = 4
    video_queue_per_key: int | None = None
    video_job_seconds: float = 3600.0
    video_ttl_s: float = 24 * 3600.0
    video_disk_bytes: int = 8 * 1024**3

    def __post_init__(self) -> None:
        for name in ("workers", "max_upload_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise OptionsError(f"{name} must be at least 1")
        if self.queue_size < 0 or self.cache_bytes < 0 or self.source_cache_bytes < 0:
            raise OptionsError("queue_size and the cache sizes cannot be negative")
        if self.max_batch < 1 or self.batch_wait_ms < 0:
            raise OptionsError("max_batch must be at least 1 and batch_wait_ms not negative")
        self.runtime.check_batch(self.max_batch, "--max-batch")
        if self.request_timeout_s <= 0:
            raise OptionsError("request_timeout_s must be positive")
        for name in ("video_max_upload_bytes", "video_max_frames", "video_max_pixels"):
            if getattr(self, name) < 1:
                raise OptionsError(f"{name} must be at least 1")
        if self.video_max_seconds <= 0 or self.video_ttl_s <= 0 or self.video_queue_size < 0:
            raise OptionsError("video limits must be positive")
        if self.video_job_seconds <= 0:
            raise OptionsError("video_job_seconds must be positive")
        if self.video_queue_per_key is None:
            object.__setattr__(
                self, "video_queue_per_key", max(1, (self.video_queue_size + 1) // 2)
            )
        elif self.video_queue_per_key < 1:
            raise OptionsError("video_queue_per_key must be at least 1")

    @property
    def jobs_dir(self) -> Path:
        """Where video jobs keep their state and files."""
        from .._system import cache_home

        return self.state_dir if self.state_dir is not None else cache_home() / "jobs"

    @property
    def threads_per_worker(self) -> int:
        """ONNX Runtime threads per inference, so that all workers together fill the cores."""
        return thread_share(self.workers)


def load_api_keys(value: str | None = None, file: str | Path | None = None) -> tuple[str, ...]:
    """API keys from a comma-separated string ($ALPHACUT_API_KEYS) and/or a file with one key
    per line ($ALPHACUT_API_KEYS_FILE); blank lines and # comments are ignored."""
    value = os.environ.get("ALPHACUT_API_KEYS") if value is None else value
    file = os.environ.get("ALPHACUT_API_KEYS_FILE") if file is None else file
    keys = [k.strip() for k in (value or "").split(",")]
    if file:
        try:
            lines = Path(file).read_text().splitlines()
        except OSError as exc:
            raise OptionsError(f"cannot read API key file {file}: {exc}") from None
        keys.extend(line.strip() for line in lines if not line.lstrip().startswith("#"))
    return tuple(k for k in keys if k)
