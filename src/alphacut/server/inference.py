"""Inference off the event loop: a bounded worker pool with an admission limit.

At most `workers` images are processed at once and `queue_size` more may wait;
beyond that a request is refused at once with `Overloaded` (503 + Retry-After)
instead of queueing without bound. Sessions are created once per model and
reused; there is never a session per request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from ..errors import InferenceTimeout, ModelNotFound, Overloaded, UnknownSource
from ..imagefile import MEDIA_TYPES, DecodedImage, encode
from ..models import MODELS, ModelPolicy, Session, find_model, get_spec
from ..models.registry import unknown_model
from ..options import Limits, RemoveOptions
from ..pipeline import predict_mask_batch
from ..pipeline.hints import read_hints
from ..pipeline.runner import admit, automatic_alphas
from ..pool import ModelPool
from ..remover import Remover
from .batcher import MicroBatcher
from .cache import KeptUpload, UploadCache, upload_key
from .metrics import Metrics
from .settings import ServerSettings

#: The server's clients cannot raise its limit; its operator can.
SERVER_PIXEL_HINT = "the server's limit: alphacut serve --max-pixels"
SERVER_MATTING_HINT = "the server's limit: alphacut serve --max-matting-pixels"

__all__ = ["SERVER_MATTING_HINT", "SERVER_PIXEL_HINT", "Inference", "Result"]

log = logging.getLogger("alphacut.server")


@dataclass(frozen=True)
class Result:
    data: bytes
    media_type: str
    reference: str = ""  # the upload's SHA-256, for POST /api/refine


class Inference:
    def __init__(self, settings: ServerSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._limits = Limits(
            max_pixels=settings.max_pixels,
            max_matting_pixels=settings.max_matting_pixels,
            raise_hint=SERVER_PIXEL_HINT,
            matting_hint=SERVER_MATTING_HINT,
        )
        # Set once from the operator's flags; every model a request reaches (the main one, a
        # ViTMatte refiner, a video job's) is loaded under it.
        policy = ModelPolicy(
            download=settings.allow_downloads,
            accept_licenses=settings.accept_licenses,
            refusal="this server does not download models: its operator may start it with "
            "--allow-downloads",
        )
        runtime = dataclasses.replace(
            settings.runtime,
            intra_op_threads=settings.runtime.intra_op_threads or settings.threads_per_worker,
        )
        # `alphacut serve --providers cuda` fails here, at start-up.
        self.pool = ModelPool(runtime, policy)
        self._workers = ThreadPoolExecutor(settings.workers, thread_name_prefix="alphacut-infer")
        self._capacity = settings.workers + settings.queue_size
        self._admitted = 0
        self._running = 0
        self._count_lock = threading.Lock()
        self.uploads = UploadCache(settings.source_cache_bytes)
        # The session each model's requests run: its dynamic-batch copy under --max-batch.
        self._sessions: dict[str, Session] = {}
        self._batchers: dict[str, MicroBatcher] = {}
        self._session_lock = threading.Lock()

    # -- models -----------------------------------------------------------------------------

    @property
    def policy(self) -> ModelPolicy:
        return self.pool.policy

    def allowed_models(self) -> list[str]:
        """Names a client may request."""
        if self.settings.models is not None:
            return list(self.settings.models)
        return [name for name in MODELS if self.settings.allow_downloads or self._usable(name)]

    def _usable(self, name: str) -> bool:
        return name in self._sessions or find_model(get_spec(name)) is not None

    def describe_models(self) -> list[dict[str, object]]:
        allowed = set(self.allowed_models())
        rows = []
        for spec in MODELS.values():
            available = spec.name in self._sessions or find_model(spec) is not None
            rows.append(
                {
                    "name": spec.name,
                    "description": spec.description,
                    "license": spec.license,
                    "source": spec.source,
                    "source_terms": spec.source_terms,
                    "size_mb": spec.size_mb,
                    "input_size": list(spec.input_size),
                    "available": available and spec.name in allowed,
                    "allowed": spec.name in allowed,
                    "loaded": spec.name in self._sessions,
                    # What really runs: the graph loaded (INT8 or FP32) and its runtime.
                    "runs": (
                        self._sessions[spec.name].description
                        if spec.name in self._sessions
                        else None
                    ),
                }
            )
        return rows

    def session(self, name: str) -> Session:
        """The shared session for `name`, loaded from the pool on first use (one load at a
        time), with a micro-batcher in front of it under --max-batch."""
        session = self._sessions.get(name)
        if session is not None:
            return session
        if name not in MODELS:
            raise unknown_model(name, self.settings.models, "GET /api/models lists this server's")
        if self.settings.models is not None and name not in self.settings.models:
            raise ModelNotFound(f"model {name!r} is not enabled on this server")
        with self._session_lock:
            session = self._sessions.get(name)
            if session is None:
                batching = self.settings.max_batch > 1
                session = self.pool.session(name, batched=batching)
                if batching and session.batches:
                    self._batchers[name] = MicroBatcher(
                        session,
                        self.settings.max_batch,
                        self.settings.batch_wait_ms / 1000,
                        on_batch=self.metrics.batch_size.observe,
                    )
                self.metrics.model_load_seconds.labels(name).set(session.load_seconds)
                self._sessions[name] = session
        return session

    def check_models(self, options: RemoveOptions) -> None:
        """Refuse a request now, before it queues, if `options` need a model besides the
        main one that this server may not load (ModelNotFound). The main one is checked as
        it loads."""
        self.pool.require(options)

    def remover(self, session: Session, limits: Limits | None = None) -> Remover:
        """A remover of `session` under `limits` over the server's pool, which loads anything
        else (a ViTMatte refiner) once, under the server's policy."""
        return Remover(session, pool=self.pool, limits=limits or self._limits)

    def is_loaded(self, name: str) -> bool:
        return name in self._sessions

    # -- requests ---------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return self._admitted - self._running

    async def refine(
        self,
        data: bytes | None,
        reference: str | None,
        hints: bytes,
        model: str,
        options: RemoveOptions,
        source: str,
        scope: str = "",
    ) -> Result:
        """`remove` with painted hints, for an upload sent now (`data`) or earlier
        (`reference`, sent under the same API key's `scope`); UnknownSource if the server no
        longer has that one."""
        if data is None:
            kept = self.uploads.get(scope, reference or "", model)
            if kept is None:
                raise UnknownSource(
                    f"no upload {reference!r} with model {model} here (it may have expired): "
                    "send the image again as `file`"
                )
            data = kept.data
        return await self.remove(data, model, options, source, hints, reference, scope)

    async def remove(
        self,
        data: bytes,
        model: str,
        options: RemoveOptions,
        source: str,
        hints: bytes | None = None,
        reference: str | None = None,
        scope: str = "",
    ) -> Result:
        """Process one upload in the pool; Overloaded if no capacity, InferenceTimeout if slow.
        `reference`: the upload's `upload_key`, when the caller has hashed it already.
        `scope`: the API key's, which the upload is kept under for later strokes."""
        self.check_models(options)
        with self._count_lock:
            if self._admitted >= self._capacity:
                raise Overloaded(
                    f"server busy: {self._admitted} requests in progress; retry in "
                    f"{self.settings.retry_after_s}s"
                )
            self._admitted += 1
            self.metrics.queue_depth.set(self.queued)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._workers, self._work, data, model, options, source, hints, reference, scope
        )
        # The slot is freed when the work really ends, even if the client gave up earlier,
        # so abandoned requests still count against capacity while they use a core.
        future.add_done_callback(lambda _: self._release())
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise InferenceTimeout(
                f"processing took longer than {self.settings.request_timeout_s:g}s"
            ) from None

    def _release(self) -> None:
        with self._count_lock:
            self._admitted -= 1
            self.metrics.queue_depth.set(self.queued)

    def _work(
        self,
        data: bytes,
        model: str,
        options: RemoveOptions,
        source: str,
        hints: bytes | None,
        reference: str | None,
        scope: str,
    ) -> Result:
        with self._count_lock:
            self._running += 1
            self.metrics.queue_depth.set(self.queued)
        self.metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            session = self.session(model)
            remover = self.remover(session)
            decoded = remover.decode(data, source=source)
            admit(decoded.image.size, options, self._limits, source)  # before the model
            reference = reference or upload_key(data)
            kept = self.uploads.get(scope, reference, model)
            if kept is None:
                kept = KeptUpload(data, self._masks(remover, decoded, model, options))
                self.uploads.put(scope, reference, model, kept)
            painted = read_hints(hints, decoded.image.size, self._limits) if hints else None
            automatic = (
                self._automatic(kept, decoded, options)
                if options.refine and options.refine_scope == "image"
                else None
            )
            result = remover.process(
                decoded, options, masks=kept.masks, hints=painted, automatic=automatic
            )
            encoded = encode(result, options, decoded.icc_profile)
            return Result(encoded, MEDIA_TYPES[options.output_format], reference)
        finally:
            self.metrics.inference_seconds.observe(time.perf_counter() - started)
            self.metrics.in_flight.dec()
            with self._count_lock:
                self._running -= 1

    def _masks(
        self, remover: Remover, decoded: DecodedImage, model: str, options: RemoveOptions
    ) -> list[Image.Image]:
        batcher = self._batchers.get(model)
        if batcher is None:
            return remover.predict(decoded, options)
        return predict_mask_batch(remover.session, [decoded.image], run=batcher.run)

    @staticmethod
    def _automatic(
        kept: KeptUpload, decoded: DecodedImage, options: RemoveOptions
    ) -> list[Image.Image]:
        """Each mask's refinement without hints, made once per upload and method."""
        key = (options.refine or "auto", options.post_process_mask)
        found = kept.automatic.get(key)
        if found is None:
            found = kept.automatic[key] = automatic_alphas(decoded.image, kept.masks, options)
        return found

    def close(self) -> None:
        """Wait for running work, then stop the pool."""
        self._workers.shutdown(wait=True, cancel_futures=True)
        for batcher in self._batchers.values():
            batcher.close()
